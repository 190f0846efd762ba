"""The media pipeline over real HTTP: presign, POST to the emulator's S3, S3 event, SQS,
image workers, table, SNS events, downloads through the gateway."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from conveyor.client import ConveyorClient, Upload
from conveyor.functions.consumer import FAILURE_REASON
from conveyor.local.runtime import Started
from conveyor.local.state import EmulatorClients
from conveyor.local.status import read_status
from conveyor.ops.redrive import peek
from conveyor.topology import TOPOLOGY
from tests import samples
from tests.integration.conftest import (
    DEAD_LETTER_WAIT_S,
    eventually,
    faulty_stack_receives,
    settled,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

pytestmark = pytest.mark.integration


def tap_events(stack: Started, aws: EmulatorClients) -> list[dict[str, Any]]:
    url = stack.info.resources.queues["media-events-tap"]
    found: list[dict[str, Any]] = []
    while True:
        batch = (
            aws("sqs")
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(message["Body"]))
            aws("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def images_queue_idle(stack: Started, aws: EmulatorClients) -> bool:
    status = read_status(aws, stack.info.resources, TOPOLOGY)
    queue = next(q for q in status.queues if q.name == "images")
    return queue.visible + queue.in_flight == 0


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_an_upload_becomes_variants_metadata_and_an_event(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, tmp_path: Path
) -> None:
    photo = write(tmp_path, "portrait.jpg", samples.jpeg_exif_rotated())
    upload = client.upload(photo)
    item = eventually(lambda: settled(stack, aws, upload.upload_id))
    assert item["status"] == "processed"
    assert (item["width"], item["height"]) == (854, 1280)
    assert item["original_filename"] == "portrait.jpg"
    assert int(item["expires_at"]) > 0
    for label, box in (("large", (800, 600)), ("medium", (400, 300)), ("thumb", (150, 150))):
        response = client.session.get(
            f"{stack.info.media_url}/media/{item['variants'][label]['key']}"
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        image = Image.open(io.BytesIO(response.content))
        assert image.height == box[1], "portrait: the height fills the box"
        assert image.width < image.height
    events = [e for e in tap_events(stack, aws) if e["image_id"] == upload.upload_id]
    assert [e["event_type"] for e in events] == ["image.processed"]
    assert events[0]["variants"]["thumb"] == f"processed/thumb/{upload.upload_id}.jpg"
    assert events[0]["correlation_id"] == item["correlation_id"]


def test_a_duplicate_s3_event_is_processed_once(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, tmp_path: Path
) -> None:
    upload = client.upload(write(tmp_path, "cat.webp", samples.webp()))
    first = eventually(lambda: settled(stack, aws, upload.upload_id))
    tap_events(stack, aws)
    head = aws("s3").head_object(
        Bucket=stack.info.resources.buckets["media"], Key=first["source_key"]
    )
    duplicate = {
        "Records": [
            {
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "bucket": {"name": stack.info.resources.buckets["media"]},
                    "object": {
                        "key": first["source_key"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": head.get("VersionId"),
                    },
                },
            }
        ]
    }
    aws("sqs").send_message(
        QueueUrl=stack.info.resources.queues["images"], MessageBody=json.dumps(duplicate)
    )
    eventually(
        lambda: (
            images_queue_idle(stack, aws)
            and any(
                upload.upload_id in line and "duplicate" in line
                for line in (stack.logs_dir / "images.log").read_text().splitlines()
            )
        )
    )
    assert settled(stack, aws, upload.upload_id) == first
    assert [e for e in tap_events(stack, aws) if e["image_id"] == upload.upload_id] == []


def _upload_empty(client: ConveyorClient) -> str:
    """What a client that ignores the policy does: declare 1 byte, send none."""
    grant = client.presign_upload("empty.jpg", "image/jpeg", 1).json()
    stored = client.session.post(
        grant["url"], data=grant["fields"], files={"file": ("empty.jpg", b"", "image/jpeg")}
    )
    assert stored.status_code in (200, 204)
    return str(grant["upload_id"])


def test_hostile_uploads_fail_with_reasons_in_quarantine_without_retries(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, tmp_path: Path
) -> None:
    hostile = {
        "random.jpg": (samples.random_bytes(), "not_an_image"),
        "truncated.jpg": (samples.truncated_jpeg(), "truncated"),
        "bomb.png": (samples.png_declaring(100_000, 100_000), "too_many_pixels"),
        "polyglot.jpg": (samples.jpeg_zip_polyglot(), "polyglot"),
    }
    uploads: dict[str, Upload] = {
        name: client.upload(write(tmp_path, name, data)) for name, (data, _) in hostile.items()
    }
    empty_id = _upload_empty(client)
    good = client.upload(write(tmp_path, "ok.png", samples.png_alpha()))

    expected = {u.upload_id: hostile[name][1] for name, u in uploads.items()}
    expected[empty_id] = "empty"
    items = {
        image_id: eventually(lambda i=image_id: settled(stack, aws, i))  # type: ignore[misc]
        for image_id in expected
    }
    assert {i: item["reason"] for i, item in items.items()} == expected
    assert eventually(lambda: settled(stack, aws, good.upload_id))["status"] == "processed"

    media = stack.info.resources.buckets["media"]
    quarantined = aws("s3").list_objects_v2(Bucket=media, Prefix="quarantine/")
    keys = {obj["Key"] for obj in quarantined.get("Contents", [])}
    assert {item["quarantine_key"] for item in items.values()} <= keys
    uploads_left = aws("s3").list_objects_v2(Bucket=media, Prefix="uploads/").get("Contents", [])
    assert not {obj["Key"] for obj in uploads_left} & {i["source_key"] for i in items.values()}

    eventually(lambda: images_queue_idle(stack, aws))
    status = read_status(aws, stack.info.resources, TOPOLOGY)
    images_queue = next(q for q in status.queues if q.name == "images")
    assert (images_queue.visible, images_queue.in_flight, images_queue.dead_letters) == (0, 0, 0)
    rejected = [
        json.loads(line)
        for line in (stack.logs_dir / "images.log").read_text().splitlines()
        if '"image rejected"' in line
    ]
    attempts = [r["image_id"] for r in rejected if r["image_id"] in expected]
    assert sorted(attempts) == sorted(expected), "each hostile file was tried exactly once"
    failed_events = {
        e["image_id"]: e["reason"]
        for e in tap_events(stack, aws)
        if e["event_type"] == "image.failed"
    }
    assert {i: failed_events.get(i) for i in expected} == expected


def test_a_message_that_is_no_s3_event_is_dead_lettered_at_once_with_its_reason(
    stack: Started, aws: EmulatorClients
) -> None:
    marker = f"not an event {uuid.uuid4().hex}"
    aws("sqs").send_message(QueueUrl=stack.info.resources.queues["images"], MessageBody=marker)

    def dead_lettered() -> MessageTypeDef | None:
        for message in peek(aws("sqs"), stack.info.resources.queues["images-dlq"]):
            if message["Body"] == marker:
                return message
        return None

    dead = eventually(dead_lettered)
    reason = dead["MessageAttributes"][FAILURE_REASON]["StringValue"]
    assert reason == "the message is not JSON, so not an S3 event"


def test_downloads_serve_only_processed_images_from_their_own_origin(
    stack: Started, aws: EmulatorClients, client: ConveyorClient
) -> None:
    media = stack.info.media_url
    assert urlsplit(media).port != urlsplit(stack.info.gateway_url).port, "another origin"
    for path in (
        "/media/uploads/x.jpg",
        "/media/processed/../uploads/x.jpg",
        "/media/quarantine/x.jpg",
        "/media/processed/large/missing.jpg",
        "/media/processed/large/planted.html",
        "/console",
        "/orders",
    ):
        response = client.session.get(media + path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    assert client.session.post(media + "/media/processed/x.jpg").status_code == 405
    assert client.session.get(stack.info.gateway_url + "/media/processed/x.jpg").status_code == 404

    # The emulator enforces no POST policy: anything can land under processed/.
    bucket = stack.info.resources.buckets["media"]
    page = b"<html><script>document.title = 'ran'</script></html>"
    for key in ("processed/large/planted.html", "processed/large/planted.jpg"):
        aws("s3").put_object(Bucket=bucket, Key=key, Body=page, ContentType="text/html")
    served = client.session.get(media + "/media/processed/large/planted.jpg")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/jpeg", "from the key, not the object"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]


def test_a_presign_request_outside_the_contract_gets_a_clear_400(client: ConveyorClient) -> None:
    response = client.presign_upload("movie.mp4", "video/mp4", 10)
    assert response.status_code == 400
    assert response.json()["fields"][0]["field"] == "content_type"
    too_big = client.presign_upload("huge.jpg", "image/jpeg", 21 * 1024 * 1024)
    assert too_big.json()["fields"][0]["field"] == "size"


def test_transient_failures_are_retried_then_dead_lettered_after_every_receive(
    faulty_stack: Started, tmp_path: Path
) -> None:
    resources = faulty_stack.info.resources
    aws = faulty_stack.clients
    client = faulty_stack.client()
    upload = client.upload(write(tmp_path, "photo.jpg", samples.jpeg_progressive()))

    def dead_letters() -> list[MessageTypeDef]:
        response = aws("sqs").receive_message(
            QueueUrl=resources.queues["images-dlq"], MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return list(response.get("Messages", []))

    [dead] = eventually(dead_letters, timeout_s=DEAD_LETTER_WAIT_S)
    assert upload.upload_id in dead["Body"]
    log = (faulty_stack.logs_dir / "images.log").read_text()
    assert log.count('"throttled_claim"') == faulty_stack_receives("images")


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("image/avif;q=0, image/webp", "image/webp"),
        ("*/*", "image/jpeg"),
        (None, "image/jpeg"),
    ],
    ids=["chromium", "webp-only", "avif-refused", "any", "no-accept"],
)
def test_one_url_serves_the_best_stored_format_the_client_accepts(
    stack: Started, aws: EmulatorClients, client: ConveyorClient, accept: str | None, served: str
) -> None:
    upload = client.upload_bytes(
        "rocket.jpg", samples.encode(samples.photo("rocket.jpg"), "JPEG"), "image/jpeg"
    )
    item = eventually(lambda: settled(stack, aws, upload.upload_id))
    view = client.upload_status(upload.upload_id).json()
    url = view["variants"]["medium"]["url"]
    assert url.endswith("?formats=avif,webp")
    stored = {f["type"]: f for f in item["variants"]["medium"]["formats"]}
    # requests leaves a header out when its value is None (it sends */* otherwise).
    response = requests.get(url, headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == served
    assert response.headers["Vary"] == "Accept"
    assert len(response.content) == int(stored[served]["bytes"])
    assert Image.open(io.BytesIO(response.content)).size == (
        int(item["variants"]["medium"]["width"]),
        int(item["variants"]["medium"]["height"]),
    )
