"""Hostile input gets a clear 4xx in the one error shape, never a 500: every string and list in the schema has
a maximum; huge lists and numbers, deep JSON, invalid UTF-8, binary bodies, NaN and infinities in uploaded
matrices are refused with what to fix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from attnlens.api.schemas import MAX_CODE_CHARS

ERROR_KEYS = {"ok", "status", "code", "error", "errors"}


def refused(response, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text[:300]
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == ERROR_KEYS and body["ok"] is False and body["status"] == response.status_code
    assert body["error"], body
    return body


def unbounded(schema: dict[str, Any]) -> list[str]:
    """Every string and array a client can send (query, path and body, through $refs) without a maximum."""
    components = schema["components"]["schemas"]
    found: list[str] = []

    def walk(node: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], f"{where}<{name}>", seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, where, seen)
        kind = node.get("type")
        if kind == "string" and "maxLength" not in node and "enum" not in node and "const" not in node:
            found.append(f"string {where}")
        if kind == "array":
            if "maxItems" not in node:
                found.append(f"array {where}")
            walk(node.get("items", {}), f"{where}[]", seen)
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{name}", seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}.*", seen)

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                walk(parameter["schema"], f"{method.upper()} {path} {parameter['name']}", frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], f"{method.upper()} {path} body", frozenset())
    return found


def test_every_string_and_list_a_client_sends_has_a_maximum(atlas_client):
    schema = atlas_client.get("/api/openapi.json").json()
    assert unbounded(schema) == []
    # and the checker does find one (so the empty list above means something)
    assert unbounded(
        {"components": {"schemas": {}}, "paths": {"/x": {"post": {"requestBody": {"content": {
            "application/json": {"schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}}}}
    ) == ["string POST /x body.a"]  # fmt: skip


def test_huge_lists_and_numbers_are_refused(atlas_client):
    first = atlas_client.get("/api/inferences", params={"limit": 1}).json()["items"][0]["id"]
    many = [f"L0H{i}" for i in range(70_000)]  # over the schema's ceiling
    refused(atlas_client.post(f"/api/inferences/{first}/ablations", json={"heads": many}), 422)
    setting = [f"L0H{i % 4}" for i in range(3000)]  # under the ceiling, over api.max_ablate_heads (2,048)
    assert (
        refused(atlas_client.post(f"/api/inferences/{first}/ablations", json={"heads": setting}))["code"]
        == "input_too_large"
    )
    assert refused(
        atlas_client.post(f"/api/inferences/{first}/ablations", json={"heads": [], "max_new_tokens": 10**9})
    )["code"] in {"invalid_request", "input_too_large"}
    refused(atlas_client.post(f"/api/inferences/{first}/ablations", json={"heads": ["L0H0" * 100]}), 422)
    refused(atlas_client.get(f"/api/patterns/{first}/neighbors", params={"k": 10**12}), 422)
    refused(atlas_client.get("/api/inferences", params={"limit": 10**30}), 422)
    refused(atlas_client.get(f"/api/inferences/{10**30}"))
    refused(atlas_client.post("/api/analyze", json={"code": "x" * (MAX_CODE_CHARS + 1)}))
    refused(atlas_client.get("/api/heads/" + "L1H1" * 50 + "/clusters"), 422)


def test_deep_json_is_a_clear_400_not_a_crash(atlas_client):
    for depth in (1_000, 100_000):
        body = "[" * depth + "]" * depth
        response = atlas_client.post(
            "/api/analyze", content=body.encode(), headers={"content-type": "application/json"}
        )
        refused(response)
    nested = '{"code": ' + "[" * 50_000 + "]" * 50_000 + "}"
    refused(atlas_client.post("/api/analyze", content=nested, headers={"content-type": "application/json"}))


def test_invalid_utf8_and_binary_bodies_are_refused(atlas_client):
    for raw in (b'{"code": "class A {\xff\xfe}"}', bytes(range(256)), b"\x00" * 1000, b""):
        refused(atlas_client.post("/api/analyze", content=raw, headers={"content-type": "application/json"}))
    plain = {"content-type": "text/plain"}
    refused(atlas_client.post("/api/analyze", content=b'{"code": "x"}', headers=plain))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_in_an_uploaded_matrix_are_refused(atlas_client, bad):
    matrix = (np.tril(np.ones((256, 256))) / np.arange(1, 257)[:, None]).tolist()
    text = str(matrix).replace("[1.0,", f"[{bad},", 1)  # the first row's only weight
    assert bad in text
    json_type = {"content-type": "application/json"}
    response = atlas_client.post("/api/patterns/search", content=f'{{"values": {text}}}', headers=json_type)
    body = refused(response)
    assert "finite" in body["error"], body
