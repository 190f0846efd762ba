"""The CLI as a user runs it: demo, up / order / status, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conveyor.core.orders import VERIFICATION_CLIENT_PREFIX
from conveyor.local.edges import EDGES
from conveyor.local.state import EmulatorClients
from conveyor.topology import Profile
from tests import samples
from tests.integration.conftest import eventually

pytestmark = pytest.mark.e2e
CLI = [str(Path(sys.executable).with_name("conveyor"))]
"""The installed command, as a user runs it (``python -m`` would start workers differently)."""


def run(*args: str, state: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CONVEYOR_STATE_DIR": str(state), "COLUMNS": "140"},
    )


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_help_explains_every_command(tmp_path: Path) -> None:
    result = run("--help", state=tmp_path)
    assert result.returncode == 0
    for command in (
        "up",
        "demo",
        "order",
        "status",
        "upload",
        "dlq",
        "redrive",
        "soak",
        "logs",
        "trace",
        "cost",
        "diagram",
    ):
        assert re.search(rf"^\s*│?\s*{command}\s", result.stdout, re.MULTILINE), command


def test_the_diagram_is_printed_fenced_for_markdown(tmp_path: Path) -> None:
    from conveyor.ops.diagram import mermaid
    from conveyor.topology import TOPOLOGY

    result = run("diagram", state=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"```mermaid\n{mermaid(TOPOLOGY)}\n```\n"


def test_logs_of_an_unknown_function_is_an_error_naming_the_logs(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    for name in ("billing", "runtime"):
        (tmp_path / "logs" / f"{name}.log").write_text("")
    result = run("logs", "--function", "nosuch", state=tmp_path)
    assert result.returncode == 1
    assert "'nosuch'" in result.stdout
    assert "billing, runtime" in result.stdout
    assert run("logs", "--function", "billing", state=tmp_path).returncode == 0


def test_status_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    result = run("status", state=tmp_path)
    assert result.returncode == 1
    assert "conveyor up" in result.stdout


@pytest.mark.parametrize("profile", list(Profile), ids=str)
def test_demo_sends_good_and_bad_orders_and_accounts_for_every_one(
    tmp_path: Path, profile: Profile
) -> None:
    result = run(
        "demo", "--exit", "--orders", "60", "--port", "0", "--profile", profile,
        state=tmp_path, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        rf"profile\s+{profile}: {re.escape(EDGES[profile].name)} events", result.stdout
    )
    numbers = {
        label.strip(): int(value)
        for label, value in re.findall(r"│ ([A-Za-z0-9 ():_]+?)\s+│\s+(\d+) │", result.stdout)
    }
    assert numbers["requests sent"] == 60
    assert numbers["accepted (202)"] == 54
    assert numbers["billed"] == numbers["archived"] == 54
    assert numbers["in a DLQ"] == 0
    assert numbers["rejected: 401 unauthorized"] >= 1
    assert numbers["rejected: 400 invalid_order"] >= 1
    assert "stopped" in result.stdout


@pytest.fixture(params=list(Profile), ids=str)
def running(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], Path, Profile]]:
    """``conveyor up`` behind each profile's edge, chosen as a user may: by environment."""
    process = subprocess.Popen(
        [*CLI, "up", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CONVEYOR_STATE_DIR": str(tmp_path), "CONVEYOR_PROFILE": request.param},
    )
    eventually(
        lambda: (tmp_path / "runtime.json").exists() or process.poll() is not None, timeout_s=60
    )
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    yield process, tmp_path, Profile(request.param)
    if process.poll() is None:
        process.kill()
        process.wait()


def test_up_order_status_then_ctrl_c_stops_everything(
    running: tuple[subprocess.Popen[str], Path, Profile],
) -> None:
    process, state, profile = running
    credentials = json.loads((state / "credentials.json").read_text())
    assert credentials["client_id"] == "dev"
    assert oct((state / "credentials.json").stat().st_mode & 0o777) == "0o600"

    sent = run(
        "order",
        "--customer",
        "cust-cli",
        "--item",
        "KB-1:2:19.90",
        "--item",
        "MOUSE:1:5",
        "--order-id",
        "cli-1",
        "--request-id",
        "trace-cli-1",
        state=state,
    )
    assert sent.returncode == 0, sent.stdout
    assert '"order_id": "cli-1"' in sent.stdout
    assert "request id trace-cli-1" in sent.stdout

    def billed_and_archived() -> bool:
        out = run("status", state=state).stdout
        assert f"{profile}: {EDGES[profile].name} events" in out, "the edge it stands in for"
        return "billed: 1" in out and "archived: 1" in out

    eventually(billed_and_archived, timeout_s=60, interval_s=0.5)
    trace_id = re.search(r"· trace ([0-9a-f]{32})", sent.stdout)
    assert trace_id, sent.stdout

    def waterfall() -> str | None:
        out = run("trace", "cli-1", state=state).stdout
        return out if "archive process" in out and "billing process" in out else None

    drawn = eventually(waterfall, timeout_s=60, interval_s=0.5)
    assert f"trace {trace_id.group(1)}" in drawn, "the order's trace is the one its answer named"
    assert "through publisher" in drawn
    missing = run("trace", "no-such-order", state=state)
    assert missing.returncode == 1
    assert "no trace of 'no-such-order'" in missing.stdout
    traced = run("logs", "--correlation-id", "trace-cli-1", state=state)
    for source in ("publisher", "billing", "archive"):
        pattern = rf"^\d\d:\d\d:\d\d\.\d{{3}} {source} "
        assert re.search(pattern, traced.stdout, re.MULTILINE), traced.stdout + traced.stderr
    rejected = run("order", "--customer", "c", "--item", "A:0:1", state=state)
    assert rejected.returncode == 1
    assert "invalid_order" in rejected.stdout
    quoted = re.search(r"request id ([0-9a-f]{32})", rejected.stdout)
    assert quoted, "a refusal has an id to quote"
    refusal = run("logs", "--correlation-id", quoted.group(1), state=state).stdout
    assert re.search(r" publisher INFO +request refused ", refusal), refusal

    def counted() -> str | None:
        out = run("status", state=state).stdout
        counts = re.search(r"OrdersRejected\s+.\s+invalid_order\s+.\s+1\b", out)
        return out if counts and re.search(r"OrdersBilled\s+.\s+.\s+1\b", out) else None

    shown = eventually(counted, timeout_s=60, interval_s=0.5)
    # Two orders, and the first followed to billed through GET /orders/{id}; no errors.
    invoked = re.search(r"publisher\s+.\s+(\d+)\s+.\s+0\b", shown)
    assert invoked, shown
    assert int(invoked.group(1)) >= 3
    bad_flag = run("order", "--customer", "c", "--item", "nonsense", state=state)
    assert bad_flag.returncode != 0
    assert "SKU:QUANTITY:UNIT_PRICE" in bad_flag.stdout + bad_flag.stderr

    photo = state / "rocket.jpg"
    photo.write_bytes(samples.PHOTOS["rocket.jpg"].read_bytes())
    impostor = state / "impostor.png"
    impostor.write_bytes(b"GIF89a but not really")
    uploaded = run("upload", str(photo), state=state, timeout=120)
    assert uploaded.returncode == 0, uploaded.stdout
    assert "processed" in uploaded.stdout
    assert "640x427" in uploaded.stdout
    link = re.search(
        r"(http://127\.0\.0\.1:\d+/media/processed/large/\w+\.jpg\?formats=avif,webp)",
        uploaded.stdout,
    )
    assert link, uploaded.stdout
    served = requests.get(link.group(1), headers={"Accept": "image/webp"}, timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/webp"
    stored = re.search(
        r"stored as jpeg [\d.]+ KB, avif [\d.]+ KB, webp ([\d.]+) KB", uploaded.stdout
    )
    assert stored, uploaded.stdout
    assert abs(len(served.content) / 1000 - float(stored.group(1))) < 0.1
    presigned = re.search(
        r"^  rocket\.jpg: ([0-9a-f]{32}) · trace [0-9a-f]{32}$", uploaded.stdout, re.MULTILINE
    )
    assert presigned, uploaded.stdout
    traced = run("logs", "--correlation-id", presigned.group(1), state=state)
    for source in ("presign", "images"):
        pattern = rf"^\d\d:\d\d:\d\d\.\d{{3}} {source} "
        assert re.search(pattern, traced.stdout, re.MULTILINE), traced.stdout + traced.stderr
    mixed = run("upload", str(photo), str(impostor), state=state, timeout=120)
    assert mixed.returncode == 1, "a failed image is a failed command"
    assert "not_an_image" in mixed.stdout
    assert run("upload", str(state / "missing.jpg"), state=state).returncode == 1

    # A message that failed three times sits in the billing DLQ; look, then move it back.
    info = json.loads((state / "runtime.json").read_text())
    order = {
        "order_id": "from-dlq-1",
        "customer_id": "c",
        "currency": "EUR",
        "client_id": "dev",
        "items": [{"sku": "A", "quantity": 1, "unit_price": "2.50"}],
        "accepted_at": "2026-11-24T10:00:00+00:00",
        "correlation_id": "dlq-test",
    }
    sqs = EmulatorClients(info["emulator_url"])("sqs")
    sqs.send_message(
        QueueUrl=info["resources"]["queues"]["billing-dlq"], MessageBody=json.dumps(order)
    )
    listed = run("dlq", "billing", state=state)
    assert listed.returncode == 0, listed.stdout
    assert "order from-dlq-1" in listed.stdout
    assert "1 message(s)" in listed.stdout
    dry = run("redrive", "billing", "--dry-run", state=state)
    assert "would move" in dry.stdout
    assert "nothing was changed" in dry.stdout
    moved = run("redrive", "billing", state=state)
    assert "moved 1 message(s) from billing-dlq to billing" in moved.stdout, moved.stdout
    eventually(
        lambda: "billed: 2" in run("status", state=state).stdout, timeout_s=60, interval_s=0.5
    )
    assert "0 message(s)" in run("dlq", "billing-dlq", state=state).stdout
    assert run("dlq", "nonsense", state=state).returncode == 1

    children = descendants(process.pid)
    assert len(children) >= 5, "emulator and one worker per function instance"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped" in output
    # The banner says what the functions run on: Lambda's Python, prepared by make.
    assert "functions    Python 3.12." in output, output
    assert "as Lambda runs them" in output
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "no orphan processes"
    assert not (state / "runtime.json").exists()
    for log in (state / "logs").glob("*.log"):
        assert "service_undefined" not in log.read_text(), f"{log.name}: a line without its service"


def test_verify_starts_a_stack_proves_it_and_reports_for_ci(tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    result = run("verify", "--json", "--junit", str(junit), state=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)  # the report alone: the run talks on stderr
    assert report["summary"] == {"pass": 15, "fail": 0, "skip": 3}
    assert report["run"]["client"].startswith(VERIFICATION_CLIENT_PREFIX), "its orders expire"
    assert junit.read_text().count("<testcase ") == 18
    assert not (tmp_path / "runtime.json").exists(), "the stack it started is stopped"
    unknown = run("verify", "--only", "no-such-check", state=tmp_path)
    assert unknown.returncode == 1
    assert "no check named no-such-check; the checks are: https-only" in unknown.stdout
