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
    "400": "the body is not valid: see fields",
    "401": "the request signature is missing or invalid",
    "413": "the body is too large",
    "415": "the body is not application/json in UTF-8",
    "503": "a dependency is unavailable: retry with the same request",
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(
    summary: str, request: dict[str, str], status: str, response: dict[str, Any]
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {
            "description": summary,
            "content": {"application/json": {"schema": response}},
        }
    }
    for code, description in _ERRORS.items():
        responses[code] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return {
        "summary": summary,
        "security": [{"ClientId": [], "Timestamp": [], "Signature": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": responses,
    }


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
                    "Accept an order",
                    order,
                    "202",
                    {
                        "type": "object",
                        "required": ["order_id", "status"],
                        "properties": {
                            "order_id": {"type": "string"},
                            "status": {"const": "accepted"},
                        },
                    },
                )
            },
            "/uploads": {
                "post": _operation(
                    "Presign an image upload",
                    upload,
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
