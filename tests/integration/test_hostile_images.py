"""Hostile images through the real pipeline: each is failed with its reason, quarantined
and not retried, and the image workers' memory stays inside the function's limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.client import ConveyorClient
from conveyor.local.runtime import LocalRuntime, Started
from conveyor.local.state import EmulatorClients
from conveyor.topology import TOPOLOGY
from tests import samples
from tests.integration.conftest import eventually, settled

pytestmark = pytest.mark.integration


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def upload_bytes(client: ConveyorClient, name: str, data: bytes, declared_size: int) -> str:
    """Presign for ``declared_size`` bytes, then send ``data`` as a client that ignores
    the policy would (the emulator does not enforce content-length-range)."""
    content_type = "image/png" if name.endswith(".png") else "image/jpeg"
    grant = client.presign_upload(name, content_type, declared_size).json()
    stored = client.session.post(
        grant["url"], data=grant["fields"], files={"file": (name, data, content_type)}, timeout=60
    )
    assert stored.status_code in (200, 204), stored.text
    return str(grant["upload_id"])


def test_hostile_images_fail_with_reasons_and_memory_stays_bounded(
    stack: Started,
    runtime: LocalRuntime,
    aws: EmulatorClients,
    client: ConveyorClient,
    tmp_path: Path,
) -> None:
    hostile = {
        "bomb-100000x100000.png": (samples.png_declaring(100_000, 100_000), "too_many_pixels"),
        "bomb-65000x65000.jpg": (samples.jpeg_declaring(65_000, 65_000), "too_many_pixels"),
        "text-bomb.png": (samples.png_text_bomb(), "metadata_too_large"),
        "truncated.jpg": (samples.truncated_jpeg(), "truncated"),
        "polyglot.jpg": (samples.jpeg_zip_polyglot(), "polyglot"),
    }
    expected = {
        upload_bytes(client, name, data, len(data)): reason
        for name, (data, reason) in hostile.items()
    }
    oversized = b"\xff\xd8\xff\xe0" + bytes(21 * 1024 * 1024)
    expected[upload_bytes(client, "past-the-policy.jpg", oversized, 1000)] = "too_large"
    big_but_fine = upload_bytes(client, "high-ratio.png", samples.png_high_ratio(), 1000)
    # Metadata stored as is is bounded by the file size alone, as in real editors' files.
    comments = samples.jpeg_with_huge_comments()
    commented = upload_bytes(client, "huge-comments.jpg", comments, len(comments))

    items = {
        i: eventually(lambda i=i: settled(stack, aws, i), timeout_s=60)  # type: ignore[misc]
        for i in expected
    }
    assert {i: item["reason"] for i, item in items.items()} == expected
    assert all(item["quarantine_key"].startswith("quarantine/") for item in items.values())
    fine = eventually(lambda: settled(stack, aws, big_but_fine), timeout_s=60)
    assert (fine["status"], fine["width"], fine["height"]) == ("processed", 6000, 6000)
    assert eventually(lambda: settled(stack, aws, commented), timeout_s=60)["status"] == "processed"

    limit = TOPOLOGY.function("images").memory_mb
    peaks = [peak_rss_mb(pid) for pid in runtime.pools["images"].pids()]
    assert peaks
    assert max(peaks) < limit, f"image workers peaked at {max(peaks):.0f} MB of {limit} MB"
    print(f"image worker peak RSS: {max(peaks):.0f} MB (limit {limit} MB)")
