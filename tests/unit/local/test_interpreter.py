"""Which Python the local functions run on: Lambda's when it is prepared, else the host's,
and the banner says which."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from conveyor.local.interpreter import OVERRIDE, choose


def fake_python(tmp_path: Path, version: str) -> Path:
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_lambdas_python_is_chosen_when_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OVERRIDE, str(fake_python(tmp_path, "3.12.9")))
    chosen = choose()
    assert chosen.deployed
    assert chosen.describe() == "Python 3.12.9, as Lambda runs them"


@pytest.mark.parametrize("present", [False, True])
def test_without_it_the_hosts_python_is_used_and_said_to_be_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: bool
) -> None:
    # Absent, or present but not Lambda's version: the host's own, named as such.
    other = fake_python(tmp_path, "3.13.0") if present else tmp_path / "missing"
    monkeypatch.setenv(OVERRIDE, str(other))
    chosen = choose()
    if present:
        assert (chosen.path, chosen.version) == (str(other), "3.13.0")
    else:
        assert (chosen.path, chosen.version) == (sys.executable, platform.python_version())
    assert not chosen.deployed
    assert "not Lambda's 3.12 (make lambda-python)" in chosen.describe()
