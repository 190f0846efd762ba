"""The presign and image functions, with AWS mocked in process."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from pydantic import ValidationError

from conveyor.aws import clients, images_table
from conveyor.core.media import MAX_UPLOAD_BYTES, parse_upload_key
from conveyor.core.upload_request import UploadRequest
from conveyor.functions import images, presign
from conveyor.local.mapping import sqs_event
from conveyor.local.provision import Resources
from conveyor.topology import TOPOLOGY
from tests import samples
from tests.unit.conftest import (
    context,
    drain,
    modules_loaded_by,
    signed_event,
    use_function_env,
)

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "request_body",
    [
        {"filename": "a.jpg", "content_type": "image/svg+xml", "size": 10},
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": 0},
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": MAX_UPLOAD_BYTES + 1},
        {"filename": "../etc/passwd", "content_type": "image/jpeg", "size": 10},
        {"filename": "a\x00.jpg", "content_type": "image/jpeg", "size": 10},
        {"filename": "", "content_type": "image/jpeg", "size": 10},
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": "10"},
        {"filename": "a.jpg", "content_type": "image/jpeg"},
    ],
)
def test_upload_requests_outside_the_contract_are_refused(request_body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UploadRequest.model_validate_json(json.dumps(request_body))


def test_the_filename_is_only_a_label_the_content_type_decides_the_key() -> None:
    request = UploadRequest(filename="cat.png", content_type="image/jpeg", size=9)
    assert request.extension == ".jpg"


def test_upload_keys_round_trip_and_foreign_keys_are_not_ours() -> None:
    request = UploadRequest(filename="Holiday Photo.JPEG", content_type="image/jpeg", size=9)
    assert request.extension == ".jpg"
    assert parse_upload_key(f"uploads/{UPLOAD_ID}.jpg") == (UPLOAD_ID, ".jpg")
    assert parse_upload_key("uploads/../secrets.jpg") is None
    assert parse_upload_key(f"processed/large/{UPLOAD_ID}.jpg") is None


@pytest.fixture
def presign_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    use_function_env(monkeypatch, resources, "presign")
    return resources


@pytest.mark.usefixtures("edge")
def test_presign_returns_a_policy_pinning_type_size_and_key(presign_env: Resources) -> None:
    body = json.dumps({"filename": "cat.png", "content_type": "image/png", "size": 1234})
    response = presign.handler(signed_event(body.encode(), path="/uploads"), context())
    assert response["statusCode"] == 200, response["body"]
    grant = json.loads(response["body"])
    assert grant["expires_in"] == 300
    fields = grant["fields"]
    assert fields["key"] == f"uploads/{grant['upload_id']}.png"
    assert fields["Content-Type"] == "image/png"
    policy = json.loads(__import__("base64").b64decode(fields["policy"]))
    assert ["content-length-range", 1, MAX_UPLOAD_BYTES] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]


@pytest.mark.usefixtures("edge")
def test_presign_refuses_bad_requests_before_issuing_anything(presign_env: Resources) -> None:
    body = json.dumps({"filename": "x.gif", "content_type": "image/tiff", "size": 5})
    response = presign.handler(signed_event(body.encode(), path="/uploads"), context())
    assert response["statusCode"] == 400
    payload = json.loads(response["body"])
    assert payload["error"] == "invalid_upload"
    assert payload["fields"][0]["field"] == "content_type"
    unsigned = signed_event(body.encode(), path="/uploads", secret="wrong")
    assert presign.handler(unsigned, context())["statusCode"] == 401


@pytest.fixture
def images_env(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    use_function_env(monkeypatch, resources, "images")
    drain(resources.queues["images"])  # the notification's s3:TestEvent
    return resources


def put_upload(
    resources: Resources, data: bytes, content_type: str, ext: str, upload_id: str = UPLOAD_ID
) -> dict[str, Any]:
    """Store an upload and return the S3 event record S3 would send for it."""
    key = f"uploads/{upload_id}{ext}"
    stored = boto3.client("s3").put_object(
        Bucket=resources.buckets["media"],
        Key=key,
        Body=data,
        ContentType=content_type,
        Metadata={"correlation-id": f"corr-{upload_id[:4]}", "filename": "holiday%20pic" + ext},
    )
    return {
        "eventName": "ObjectCreated:Post",
        "s3": {
            "bucket": {"name": resources.buckets["media"]},
            "object": {
                "key": key,
                "size": len(data),
                "eTag": stored["ETag"].strip('"'),
                "versionId": stored.get("VersionId"),
            },
        },
    }


def s3_messages(*records: dict[str, Any], receive: int = 1) -> dict[str, Any]:
    return sqs_event(
        [
            {
                "MessageId": f"m{n}",
                "ReceiptHandle": f"r{n}",
                "Body": json.dumps({"Records": [r]}),
                "Attributes": {"ApproximateReceiveCount": str(receive)},
            }
            for n, r in enumerate(records)
        ],
        "arn:aws:sqs:us-east-1:123456789012:conveyor-images",
        "us-east-1",
    )


def item(resources: Resources, upload_id: str = UPLOAD_ID) -> dict[str, Any] | None:
    return images_table.get(boto3.client("dynamodb"), resources.tables["images"], upload_id)


def events(resources: Resources) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(resources.queues["media-events-tap"])]


def test_an_image_is_rendered_recorded_and_announced(images_env: Resources) -> None:
    record = put_upload(images_env, samples.jpeg_progressive(), "image/jpeg", ".jpg")
    assert images.handler(s3_messages(record), context()) == {"batchItemFailures": []}
    stored = item(images_env)
    assert stored is not None
    assert stored["status"] == "processed"
    assert (stored["width"], stored["height"]) == (1800, 1200)
    assert stored["mime_type"] == "image/jpeg"
    assert stored["original_filename"] == "holiday pic.jpg"
    assert stored["correlation_id"] == "corr-0123"
    assert stored["expires_at"] > stored["created_at"].count("-")  # a number: TTL epoch
    assert set(stored["variants"]) == {"large", "medium", "thumb"}
    s3 = boto3.client("s3")
    thumb = s3.get_object(
        Bucket=images_env.buckets["media"], Key=f"processed/thumb/{UPLOAD_ID}.jpg"
    )
    assert thumb["ContentType"] == "image/jpeg"
    [event] = events(images_env)
    assert event["event_type"] == "image.processed"
    assert event["variants"]["large"] == f"processed/large/{UPLOAD_ID}.jpg"
    assert event["correlation_id"] == "corr-0123"


def test_every_stored_format_is_recorded_announced_and_offered_by_the_url(
    images_env: Resources,
) -> None:
    record = put_upload(images_env, samples.jpeg_progressive(), "image/jpeg", ".jpg")
    assert images.handler(s3_messages(record), context()) == {"batchItemFailures": []}
    stored = item(images_env)
    assert stored is not None
    s3 = boto3.client("s3")
    [event] = events(images_env)
    for label, variant in stored["variants"].items():
        formats = variant["formats"]
        assert [f["type"] for f in formats] == ["image/jpeg", "image/avif", "image/webp"]
        for found in formats:
            kept = s3.get_object(Bucket=images_env.buckets["media"], Key=found["key"])
            assert kept["ContentType"] == found["type"]
            assert kept["ContentLength"] == found["bytes"]
        assert formats[0]["key"] == variant["key"]
        announced = [{"type": f["type"], "bytes": f["bytes"]} for f in formats]
        assert event["formats"][label] == announced
    view = images_table.status_view(stored, "https://media.example")
    assert view["variants"]["thumb"]["url"] == (
        f"https://media.example/thumb/{UPLOAD_ID}.jpg?formats=avif,webp"
    )
    assert [f["type"] for f in view["variants"]["thumb"]["formats"]] == [
        "image/jpeg",
        "image/avif",
        "image/webp",
    ]


def test_a_record_stored_before_modern_formats_offers_none() -> None:
    old = {
        "image_id": UPLOAD_ID,
        "status": "processed",
        "width": 10,
        "height": 10,
        "mime_type": "image/png",
        "variants": {
            "thumb": {
                "key": f"processed/thumb/{UPLOAD_ID}.png",
                "width": 10,
                "height": 10,
                "bytes": 99,
            }
        },
    }
    view = images_table.status_view(old, "https://media.example")
    assert view["variants"]["thumb"]["url"] == f"https://media.example/thumb/{UPLOAD_ID}.png"
    assert view["variants"]["thumb"]["formats"] == [{"type": "image/png", "bytes": 99}]


def test_the_same_object_delivered_twice_is_processed_once(images_env: Resources) -> None:
    record = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    images.handler(s3_messages(record), context())
    first = item(images_env)
    images.handler(s3_messages(record, record), context())
    assert item(images_env) == first
    assert len(events(images_env)) == 1


def test_the_test_event_is_ignored_and_a_non_s3_message_is_dead_lettered(
    images_env: Resources,
) -> None:
    batch = sqs_event(
        [
            {
                "MessageId": "t",
                "ReceiptHandle": "r",
                "Body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
            },
            {"MessageId": "x", "ReceiptHandle": "r2", "Body": "not json"},
        ],
        "arn:q",
        "us-east-1",
    )
    response = images.handler(batch, context())
    assert response == {"batchItemFailures": []}
    [dead] = drain(images_env.queues["images-dlq"])
    assert dead["Body"] == "not json"


@pytest.mark.parametrize(
    ("sample", "declared", "ext", "reason"),
    [
        (samples.random_bytes, "image/jpeg", ".jpg", "not_an_image"),
        (samples.truncated_jpeg, "image/jpeg", ".jpg", "truncated"),
        (lambda: samples.png_declaring(100_000, 100_000), "image/png", ".png", "too_many_pixels"),
        (lambda: b"", "image/jpeg", ".jpg", "empty"),
        (samples.jpeg_zip_polyglot, "image/jpeg", ".jpg", "polyglot"),
        (samples.png_palette, "image/jpeg", ".jpg", "content_type_mismatch"),
    ],
    ids=["random", "truncated", "bomb", "empty", "polyglot", "lying-type"],
)
def test_a_hostile_file_is_failed_quarantined_and_not_retried(
    images_env: Resources, sample: Any, declared: str, ext: str, reason: str
) -> None:
    good = put_upload(images_env, samples.webp(), "image/webp", ".webp", upload_id="f" * 32)
    record = put_upload(images_env, sample(), declared, ext)
    assert images.handler(s3_messages(record, good), context()) == {"batchItemFailures": []}
    stored = item(images_env)
    assert stored is not None
    assert (stored["status"], stored["reason"]) == ("failed", reason)
    assert stored["quarantine_key"] == f"quarantine/{UPLOAD_ID}{ext}"
    s3, bucket = boto3.client("s3"), images_env.buckets["media"]
    s3.head_object(Bucket=bucket, Key=stored["quarantine_key"])
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=f"uploads/{UPLOAD_ID}{ext}")
    assert item(images_env, "f" * 32)["status"] == "processed"  # type: ignore[index]
    failed = [e for e in events(images_env) if e["event_type"] == "image.failed"]
    assert [e["reason"] for e in failed] == [reason]


def test_an_upload_over_the_limit_is_failed_without_reading_it(
    images_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 1000)
    record = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    images.handler(s3_messages(record), context())
    stored = item(images_env)
    assert stored is not None
    assert stored["reason"] == "too_large"


def test_a_transient_failure_is_retried_and_the_lease_released(
    images_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    real_put = clients.client("s3").put_object
    calls = {"n": 0}

    def flaky_put(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "SlowDown"}}, "PutObject")
        return real_put(**kwargs)

    monkeypatch.setattr(clients.client("s3"), "put_object", flaky_put)
    with pytest.raises(BatchProcessingError):
        images.handler(s3_messages(record), context())
    stuck = item(images_env)
    assert stuck is not None
    assert (stuck["status"], stuck["lease_until"]) == ("processing", 0)
    assert images.handler(s3_messages(record), context()) == {"batchItemFailures": []}
    assert item(images_env)["status"] == "processed"  # type: ignore[index]


def test_a_live_lease_held_by_another_worker_makes_the_record_retry(
    images_env: Resources,
) -> None:
    from datetime import UTC, datetime

    record = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    etag = record["s3"]["object"]["eTag"]
    claim = images_table.claim(
        boto3.client("dynamodb"),
        images_env.tables["images"],
        UPLOAD_ID,
        source_key="k",
        etag=etag,
        correlation_id="other",
        now=datetime.now(UTC),
        lease_s=90,
    )
    assert claim.state == "claimed"
    other = put_upload(images_env, samples.webp(), "image/webp", ".webp", upload_id="e" * 32)
    response = images.handler(s3_messages(record, other), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def failing_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown"}}, "PutObject")

    monkeypatch.setattr(clients.client("s3"), "put_object", refused)


def test_the_last_attempt_records_retries_exhausted_and_a_redrive_claims_it_again(
    images_env: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    with monkeypatch.context() as broken:
        failing_puts(broken)
        last = TOPOLOGY.queue("images").dead_letter.max_receive_count
        for receive in range(1, last):
            with pytest.raises(BatchProcessingError):
                images.handler(s3_messages(record, receive=receive), context())
            assert item(images_env)["status"] == "processing"  # type: ignore[index]
        with pytest.raises(BatchProcessingError):  # still reported: SQS dead-letters it
            images.handler(s3_messages(record, receive=last), context())
    given_up = item(images_env)
    assert given_up is not None
    assert (given_up["status"], given_up["reason"]) == ("failed", "retries_exhausted")
    assert "SlowDown" in given_up["detail"]
    # redriven from the DLQ, the message starts counting receives again
    assert images.handler(s3_messages(record), context()) == {"batchItemFailures": []}
    done = item(images_env)
    assert done is not None
    assert done["status"] == "processed"
    assert "reason" not in done


def test_an_upload_id_is_written_once(images_env: Resources) -> None:
    first = put_upload(images_env, samples.webp(), "image/webp", ".webp")
    images.handler(s3_messages(first), context())
    result = item(images_env)
    s3, bucket = boto3.client("s3"), images_env.buckets["media"]
    variant_key = f"processed/large/{UPLOAD_ID}.webp"
    variant = s3.get_object(Bucket=bucket, Key=variant_key)["Body"].read()
    events(images_env)

    for data in (samples.png_alpha(), samples.random_bytes()):  # another image, then junk
        later = put_upload(images_env, data, "image/webp", ".webp")
        assert images.handler(s3_messages(later), context()) == {"batchItemFailures": []}
        etag = later["s3"]["object"]["eTag"]
        s3.head_object(Bucket=bucket, Key=f"quarantine/{UPLOAD_ID}-{etag}.webp")

    assert item(images_env) == result, "the recorded result is untouched"
    assert s3.get_object(Bucket=bucket, Key=variant_key)["Body"].read() == variant
    assert events(images_env) == [], "nothing new is announced for the id"


@pytest.mark.parametrize(
    "body",
    [
        {"Records": [{"eventName": "ObjectCreated:Put"}]},
        {"Records": "abc"},
        {"Records": [1]},
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]},
        [1, 2],
    ],
    ids=["no-s3", "records-not-a-list", "record-not-an-object", "no-key", "not-an-object"],
)
def test_a_malformed_s3_event_goes_straight_to_the_dlq_with_its_reason(
    images_env: Resources, body: Any
) -> None:
    batch = sqs_event(
        [{"MessageId": "x", "ReceiptHandle": "r", "Body": json.dumps(body)}], "arn:q", "us-east-1"
    )
    assert images.handler(batch, context()) == {"batchItemFailures": []}, "not retried"
    [dead] = drain(images_env.queues["images-dlq"])
    reason = dead["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "S3 event" in reason or "s3.bucket.name" in reason, reason


def test_dead_lettering_keeps_every_attribute_binary_ones_included(
    images_env: Resources,
) -> None:
    batch = sqs_event(
        [
            {
                "MessageId": "x",
                "ReceiptHandle": "r",
                "Body": "not json",
                "MessageAttributes": {
                    "trace": {"DataType": "String", "StringValue": "t-1"},
                    "signature": {"DataType": "Binary", "BinaryValue": b"\x00\xffsig"},
                    "priority": {"DataType": "Number", "StringValue": "7"},
                },
            }
        ],
        "arn:q",
        "us-east-1",
    )
    images.handler(batch, context())
    [dead] = drain(images_env.queues["images-dlq"])
    kept = dead["MessageAttributes"]
    assert kept["trace"]["StringValue"] == "t-1"
    assert kept["signature"] == {"DataType": "Binary", "BinaryValue": b"\x00\xffsig"}
    assert kept["priority"]["StringValue"] == "7"
    assert kept["failure_reason"]["StringValue"]


def test_the_image_function_cold_starts_without_pydantic() -> None:
    # pydantic is a quarter of the image function's import time, and it parses no model.
    loaded = modules_loaded_by("conveyor.functions.images")
    assert "conveyor.functions.images" in loaded
    assert "PIL.Image" in loaded
    assert not [name for name in loaded if name.partition(".")[0] == "pydantic"]
