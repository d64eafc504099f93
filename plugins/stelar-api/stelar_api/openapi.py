"""The OpenAPI 3.1 document of the server API, written from the command table (so it cannot
disagree with what the server accepts)."""

from __future__ import annotations

from typing import Any

from stelar_api.commands import BATCH, COMMANDS, Spec

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "the request field at fault"},
            },
        }
    },
}
ERRORS = {
    "400": "The body or a parameter is wrong (``field`` names it)",
    "401": "No API key, or not a valid one",
    "403": "A read-only key asked for a change, or a page of another origin called",
    "404": "No node has the client (or the room keeps no history or presence)",
    "413": "The body is over max_body_size",
    "415": "The body is not JSON",
    "429": "The key's rate limit, or too many failed attempts from this address",
    "503": "The cluster cannot be reached",
}


def _params(spec: Spec) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [param.name for param in spec.params if param.required],
        "properties": {
            param.name: {**param.schema, "description": param.description} for param in spec.params
        },
    }


def _operation(name: str, summary: str, body: dict[str, Any], changes: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "Done", "content": {"application/json": {"schema": {"type": "object"}}}}
    }
    for status, description in ERRORS.items():
        responses[status] = {"description": description, "content": {"application/json": {"schema": ERROR}}}
    return {
        "operationId": name,
        "summary": summary,
        "description": "Changes the server: refused to read-only keys." if changes else "A read.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": responses,
    }


def document(prefix: str) -> dict[str, Any]:
    base = prefix.rstrip("/")
    paths: dict[str, Any] = {
        f"{base}/{name}": {"post": _operation(name, spec.summary, _params(spec), spec.changes)}
        for name, spec in COMMANDS.items()
    }
    command = {
        "oneOf": [
            {
                "type": "object",
                "required": ["method"],
                "additionalProperties": False,
                "properties": {"method": {"const": name}, "params": _params(spec)},
            }
            for name, spec in COMMANDS.items()
        ]
    }
    batch_body = {
        "type": "object",
        "required": ["commands"],
        "additionalProperties": False,
        "properties": {"commands": {"type": "array", "minItems": 1, "items": command}},
    }
    paths[f"{base}/{BATCH}"] = {
        "post": _operation(
            BATCH,
            "Several commands in order; each answers its result or its error in results[]",
            batch_body,
            True,
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stelar server API",
            "version": "1",
            "description": "Publish, disconnect, move clients between rooms and read the cluster's "
            "state from the rest of a backend. Every command is a POST of a JSON object; answers "
            'are {"result": ...} or {"error": {"code", "message", "field"}}.',
        },
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "an api.keys entry"}
            }
        },
        "paths": paths,
    }
