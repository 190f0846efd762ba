"""The HTTP API as an OpenAPI 3.1 document, built from the same pydantic models that
validate requests, so the document cannot drift from what the functions accept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from conveyor.core.orders import Order
from conveyor.core.upload_request import UploadRequest

_ERROR = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {"type": "string"},
        "reason": {"type": "string"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "order_id": {"type": "string"},
    },
}
_ERRORS = {
    "400": "the request is not valid: see reason and fields",
    "401": "the request signature is missing or invalid",
    "404": "no such resource, or not the caller's",
    "409": "an idempotency conflict, or the same order still being accepted",
    "413": "the body is too large",
    "415": "the body is not application/json in UTF-8",
    "503": "a dependency is unavailable: retry with the same request",
}
_REQUEST_ID_HEADER = {
    "X-Request-Id": {
        "description": "The correlation id of every log line this request caused",
        "schema": {"type": "string"},
    }
}
_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(
    summary: str,
    status: str,
    response: dict[str, Any],
    errors: tuple[str, ...],
    request: dict[str, str] | None = None,
    path_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {
            "description": summary,
            "headers": {**_REQUEST_ID_HEADER, **(headers or {})},
            "content": {"application/json": {"schema": response}},
        }
    }
    for code in errors:
        responses[code] = {
            "description": _ERRORS[code],
            "headers": _REQUEST_ID_HEADER,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"ClientId": [], "Timestamp": [], "Signature": []}],
        "responses": responses,
    }
    if request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request}},
        }
    if path_id is not None:
        operation["parameters"] = [{"name": path_id, "in": "path", "required": True, "schema": _ID}]
    return operation


_POST_ERRORS = ("400", "401", "413", "415", "503")
_GET_ERRORS = ("400", "401", "404", "413", "503")


def document(server_url: str = "/") -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR}
    order = _schema(Order, components)
    upload = _schema(UploadRequest, components)
    header_key = {"type": "apiKey", "in": "header"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Conveyor",
            "version": "1",
            "description": "Every request is signed: see the README's 'Calling the API'.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/orders": {
                "post": _operation(
                    "Accept an order, once per (client, order_id)",
                    "202",
                    {
                        "type": "object",
                        "required": ["order_id", "status"],
                        "properties": {
                            "order_id": {"type": "string"},
                            "status": {"const": "accepted"},
                        },
                    },
                    (*_POST_ERRORS, "409"),
                    request=order,
                    headers={
                        "Idempotent-Replayed": {
                            "description": "true: this is the stored answer to an earlier "
                            "identical request, and nothing was published again",
                            "schema": {"const": "true"},
                        }
                    },
                )
            },
            "/orders/{order_id}": {
                "get": _operation(
                    "One of the caller's orders",
                    "200",
                    {
                        "type": "object",
                        "required": ["order_id", "status", "currency", "accepted_at"],
                        "properties": {
                            "order_id": {"type": "string"},
                            "status": {"enum": ["accepted", "billed"]},
                            "currency": {"type": "string"},
                            "total": {"type": "string"},
                            "accepted_at": {"type": "string", "format": "date-time"},
                            "billed_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    _GET_ERRORS,
                    path_id="order_id",
                )
            },
            "/uploads": {
                "post": _operation(
                    "Presign an image upload",
                    "200",
                    {
                        "type": "object",
                        "required": ["upload_id", "url", "fields", "expires_in"],
                        "properties": {
                            "upload_id": {"type": "string"},
                            "url": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "expires_in": {"type": "integer"},
                        },
                    },
                    _POST_ERRORS,
                    request=upload,
                )
            },
            "/uploads/{upload_id}": {
                "get": _operation(
                    "One of the caller's uploads",
                    "200",
                    {
                        "type": "object",
                        "required": ["upload_id", "status"],
                        "properties": {
                            "upload_id": {"type": "string"},
                            "status": {
                                "enum": ["awaiting_upload", "processing", "processed", "failed"]
                            },
                            "reason": {"type": "string"},
                            "width": {"type": "integer"},
                            "height": {"type": "integer"},
                            "variants": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "object",
                                    "required": ["url", "width", "height", "formats"],
                                    "properties": {
                                        "url": {
                                            "type": "string",
                                            "description": "One URL; it serves the best "
                                            "stored format the request's Accept names",
                                        },
                                        "width": {"type": "integer"},
                                        "height": {"type": "integer"},
                                        "formats": {
                                            "type": "array",
                                            "description": "Every stored format, the "
                                            "source's first",
                                            "items": {
                                                "type": "object",
                                                "required": ["type", "bytes"],
                                                "properties": {
                                                    "type": {"type": "string"},
                                                    "bytes": {"type": "integer"},
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                    _GET_ERRORS,
                    path_id="upload_id",
                )
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ClientId": {**header_key, "name": "X-Client-Id"},
                "Timestamp": {**header_key, "name": "X-Timestamp"},
                "Signature": {**header_key, "name": "X-Signature"},
            },
        },
    }
