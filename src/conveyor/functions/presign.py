"""``POST /uploads``: authenticate the caller and hand out a presigned S3 POST;
``GET /uploads/{upload_id}``: tell the caller what became of one of its uploads.

The POST policy pins the key, the content type and ``content-length-range`` 1..20 MiB,
and expires in 5 minutes. The image function checks type and size again, because not
every S3 implementation enforces a POST policy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.aws import images_table, metrics, tracing
from conveyor.aws.clients import client
from conveyor.aws.config import MEDIA_BASE_URL, required
from conveyor.core.media import MAX_UPLOAD_BYTES, PRESIGN_EXPIRES_S, upload_key
from conveyor.core.upload_request import UploadRequest
from conveyor.functions.http_edge import (
    HttpEdge,
    HttpError,
    answer,
    json_response,
    trace_carrier,
    verified_get,
    verified_json,
)

MAX_BODY_BYTES = 4 * 1024

logger = Logger()
app = HttpEdge(
    {"/uploads": ("POST",), "/uploads/<upload_id>": ("GET",)},
    rejected_metric=metrics.UPLOADS_REJECTED,
)


@app.post("/uploads")
def create_upload() -> Response[str]:
    verified = verified_json(
        app,
        UploadRequest,
        max_bytes=MAX_BODY_BYTES,
        error="invalid_upload",
        what="upload request",
    )
    request, request_id = verified.payload, verified.caller.request_id
    client_id = verified.caller.client_id

    upload_id = uuid.uuid4().hex
    tracing.annotate(upload_id=upload_id)
    images_table.record_awaiting(
        client("dynamodb"),
        required("IMAGES_TABLE"),
        upload_id,
        client_id=client_id,
        filename=request.filename,
        correlation_id=request_id,
        now=datetime.now(UTC),
    )
    metadata = {
        "x-amz-meta-correlation-id": request_id,
        "x-amz-meta-client-id": client_id,
        "x-amz-meta-filename": quote(request.filename, safe=""),
        # The image function continues this trace from the object.
        "x-amz-meta-traceparent": tracing.traceparent(),
    }
    post = client("s3").generate_presigned_post(
        Bucket=required("MEDIA_BUCKET"),
        Key=upload_key(upload_id, request.extension),
        Fields={"Content-Type": request.content_type, **metadata},
        Conditions=[
            {"Content-Type": request.content_type},
            ["content-length-range", 1, MAX_UPLOAD_BYTES],
            *({name: value} for name, value in metadata.items()),
        ],
        ExpiresIn=PRESIGN_EXPIRES_S,
    )
    metrics.count(metrics.UPLOADS_PRESIGNED)
    logger.info("upload presigned", extra={"upload_id": upload_id, "client_id": client_id})
    return json_response(
        200,
        {
            "upload_id": upload_id,
            "url": post["url"],
            "fields": post["fields"],
            "expires_in": PRESIGN_EXPIRES_S,
        },
    )


@app.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> Response[str]:
    caller = verified_get(app)
    item = images_table.get(client("dynamodb"), required("IMAGES_TABLE"), upload_id)
    if item is None or item.get("client_id") != caller.client_id:
        # Another client's upload and no upload at all read the same.
        raise HttpError(404, "not_found", "no such upload")
    return json_response(200, images_table.status_view(item, required(MEDIA_BASE_URL)))


@metrics.published
@tracing.invocation(carrier=trace_carrier)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer(app, event, context)
