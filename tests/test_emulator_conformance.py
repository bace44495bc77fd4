"""The emulator against the pinned OpenAPI spec (``tools/spec.lock.json``, read at test time only).

Every operation of the spec is called with a valid request built from the spec itself (required fields,
examples, enums), and the response is validated with jsonschema against the operation's response schema
(OpenAPI 3.0 ``nullable`` converted to JSON-schema type unions). Error responses are validated the same way,
and the emulator's hand-written endpoint table is compared with the spec so drift is caught.

Spec defects and how the emulator resolves them (see ``magic_hour_async/testing/_bodies.py``):

- Some response schemas list fields in ``required`` that they never define: ``total_frame_cost`` (video and
  image projects), ``download`` (video projects), ``estimated_frame_cost`` (video creates) and ``frame_cost``
  (image creates). The emulator sends them as the real bodies do (``../shared/seeds``, WEBHOOKS.md section 6):
  an integer frame cost, and ``download`` as ``null`` or the first ``{url, expires_at}``.
- The emulator's request rules are generated from the same spec (``tools/generate_rules.py``); a test here
  regenerates them in memory and compares, so the shipped table cannot drift from the pin.
- The pinned spec (openapi.2026-11.json) holds 39 operations; the official SDK's overlay adds three create
  endpoints that document only their 200 answer (``tests/_emulator_spec.py`` gives them the other creates'
  error responses).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio

from magic_hour_async.testing import TOOLS, Emulator, ManualClock
from magic_hour_async.testing._extras import UPLOAD_EXTENSIONS
from magic_hour_async.testing._rules_generated import OPERATIONS as GENERATED
from magic_hour_async.testing._tools import Kind
from tests._emulator_spec import emulator_spec

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to validate against the spec")

# At collection: skips the module here, fails it under CI=true. The official SDK's three endpoints included.
SPEC: dict[str, Any] = emulator_spec()
METHODS = ("get", "post", "put", "patch", "delete")
OPERATIONS: list[tuple[str, str]] = [
    (method.upper(), path) for path, item in SPEC["paths"].items() for method in item if method in METHODS
]
# Read-only operations with no body and no id (served by testing/_account.py).
ACCOUNT_OPERATIONS = frozenset({("GET", "/v1/account"), ("GET", "/v1/saved-items")})
# Fields the spec marks required without defining them, and the JSON type the real bodies give them.
UNDEFINED_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "total_frame_cost": int,
    "estimated_frame_cost": int,
    "frame_cost": int,
    "download": (dict, type(None)),
}
KIND_BY_TAG: dict[str, Kind] = {
    "Video Projects": "video",
    "Image Projects": "image",
    "Audio Projects": "audio",
}


# -- schema helpers ----------------------------------------------------------------------------------------


def operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = SPEC["paths"][path][method.lower()]
    return op


_OPENAPI_ONLY = ("nullable", "example")


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON schema: ``nullable: true`` becomes a type union with ``"null"``."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in cast("list[Any]", node)]  # type: ignore[redundant-cast]
    if not isinstance(node, dict):
        return node
    node = cast("dict[str, Any]", node)
    converted = {key: to_json_schema(value) for key, value in node.items() if key not in _OPENAPI_ONLY}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def response_schema(method: str, path: str, status: str) -> dict[str, Any]:
    content = operation(method, path)["responses"][status]["content"]["application/json"]
    schema: dict[str, Any] = to_json_schema(content["schema"])
    return schema


def request_schema(path: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation("POST", path)["requestBody"]["content"]["application/json"]["schema"]
    return schema


FORMATS = jsonschema.FormatChecker(formats=())


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


FORMATS.checks("date-time", raises=ValueError)(_is_datetime)
FORMATS.checks("uri")(_is_uri)


def problems(schema: Mapping[str, Any], instance: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
    errors = validator.iter_errors(instance)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def undeclared(schema: Mapping[str, Any], body: Mapping[str, Any]) -> set[str]:
    """Top-level fields the emulator sends that the schema neither defines nor requires."""
    return set(body) - set(schema.get("properties", {})) - set(schema.get("required", []))


def valid_value(schema: Mapping[str, Any]) -> Any:
    """A value satisfying ``schema``: required fields only, from examples, enums, defaults and bounds."""
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: valid_value(properties[name]) for name in schema.get("required", [])}
    if "example" in schema and schema.get("type") != "array":
        return copy.deepcopy(schema["example"])
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [valid_value(schema["items"]) for _ in range(schema.get("minItems", 0))]
    return "api-assets/id/1234.png"


# Optional fields that rules stated only in prose make necessary for the required-only bodies above
# (see magic_hour_async/testing/_extras.py): "Required if `video_source` is `file`", and the like.
PROSE_FIELDS: dict[str, dict[str, Any]] = {
    "/v1/animation": {"assets.audio_file_path": "api-assets/id/1234.mp3", "style.prompt": "a city at night",
                      "style.art_style_custom": "watercolor"},
    "/v1/face-swap": {"assets.video_file_path": "api-assets/id/1234.mp4",
                      "assets.image_file_path": "api-assets/id/1234.png"},
    "/v1/face-swap-photo": {"assets.source_file_path": "api-assets/id/1234.png"},
    "/v1/lip-sync": {"assets.video_file_path": "api-assets/id/1234.mp4"},
    "/v1/video-to-video": {"assets.video_file_path": "api-assets/id/1234.mp4", "style.prompt": "neon"},
    "/v1/auto-subtitle-generator": {"style.template": "cinematic"},
}  # fmt: skip


def valid_body(path: str) -> dict[str, Any]:
    schema = request_schema(path)
    body: dict[str, Any] = valid_value(schema)
    for dotted, value in PROSE_FIELDS.get(path, {}).items():
        *parents, leaf = dotted.split(".")
        node = body
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    if path == "/v1/files/upload-urls":
        body = {"items": schema["properties"]["items"]["example"]}
    assert problems(schema, body) == [], f"the test built an invalid body for {path}: {body}"
    return body


def required_paths(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, child in schema.get("properties", {}).items():
        dotted = prefix + name
        if name in schema.get("required", []):
            found.add(dotted)
        if child.get("type") == "object":
            found |= required_paths(child, dotted + ".")
    return found


def enums(schema: Mapping[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for name, child in schema.get("properties", {}).items():
        if "enum" in child:
            found[prefix + name] = child["enum"]
        if child.get("type") == "object":
            found |= enums(child, prefix + name + ".")
    return found


def schema_at(schema: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(seed=1, clock=clock) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.token}"}) as session:
        yield session


async def send(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, data: bytes | None = None
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, data=data) as response:
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


# -- the operations ----------------------------------------------------------------------------------------


def test_the_spec_has_the_operations_the_emulator_serves() -> None:
    creates = {path for method, path in OPERATIONS if method == "POST"} - {
        "/v1/face-detection",
        "/v1/files/upload-urls",
    }
    assert {f"{method} {path}" for method, path in OPERATIONS} <= set(GENERATED)
    assert creates == {tool.path for tool in TOOLS}


@pytest.mark.asyncio
async def test_every_operation_answers_with_its_documented_response(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    exercised: list[str] = []
    failures: list[str] = []
    for method, path in OPERATIONS:
        name = f"{method} {path}"
        op = operation(method, path)
        if method == "POST":
            status, body = await send(http, method, emu.url + path, valid_body(path))
            if path == "/v1/face-detection":
                clock.advance(10)  # let the detection finish so the GET below shows faces
        elif path == "/v1/face-detection/{id}":
            _, created = await send(
                http, "POST", emu.url + "/v1/face-detection", valid_body("/v1/face-detection")
            )
            clock.advance(10)
            status, body = await send(http, method, emu.url + path.replace("{id}", created["id"]))
            assert body["faces"], "a complete detection lists faces"
        elif (method, path) in ACCOUNT_OPERATIONS:
            status, body = await send(http, method, emu.url + path)
        else:
            kind = KIND_BY_TAG[op["tags"][0]]
            project_id = emu.create_project(kind, status="complete", outputs=2 if kind == "image" else 1)
            status, body = await send(http, method, emu.url + path.replace("{id}", project_id))
            if method == "GET":
                assert body["downloads"], "a complete project lists its downloads"
        exercised.append(name)
        documented = "204" if method == "DELETE" else "200"
        if str(status) != documented:
            failures.append(f"{name}: status {status}, documented {documented}: {body}")
            continue
        if documented == "204":
            if body is not None:
                failures.append(f"{name}: 204 with a body")
            continue
        schema = response_schema(method, path, documented)
        failures += [f"{name}: {problem}" for problem in problems(schema, body)]
        if extra := undeclared(schema, body):
            failures.append(f"{name}: fields the spec does not list: {sorted(extra)}")
        for field in set(schema.get("required", [])) - set(schema.get("properties", {})):
            if not isinstance(body.get(field), UNDEFINED_REQUIRED[field]):
                failures.append(f"{name}: {field}={body.get(field)!r} does not have the real bodies' type")
    assert failures == []
    assert sorted(exercised) == sorted(f"{method} {path}" for method, path in OPERATIONS)


@pytest.mark.asyncio
async def test_video_download_field_matches_the_first_download(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    project_id = emu.create_project("video", status="complete")
    _, body = await send(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
    downloads_schema = response_schema("GET", "/v1/video-projects/{id}", "200")["properties"]["downloads"]
    assert problems(downloads_schema["items"], body["download"]) == []
    assert body["download"] == body["downloads"][0]
    assert body["total_frame_cost"] == body["credits_charged"]


# -- error responses ---------------------------------------------------------------------------------------


def _documented_error(method: str, path: str, status: int) -> dict[str, Any]:
    return response_schema(method, path, str(status))


@pytest.mark.asyncio
async def test_401_bodies_match_the_spec_for_every_operation(emu: Emulator) -> None:
    failures: list[str] = []
    async with aiohttp.ClientSession() as anonymous:
        for method, path in OPERATIONS:
            body = valid_body(path) if method == "POST" else None
            status, answer = await send(anonymous, method, emu.url + path.replace("{id}", "any"), body)
            schema = _documented_error(method, path, 401)
            if status != 401 or problems(schema, answer):
                failures.append(f"{method} {path}: {status} {answer}")
    assert failures == []


@pytest.mark.asyncio
async def test_404_400_422_and_402_bodies_match_the_spec(emu: Emulator, http: aiohttp.ClientSession) -> None:
    failures: list[str] = []
    for method, path in OPERATIONS:
        cases: list[tuple[int, Any, bytes | None]]
        if (method, path) in ACCOUNT_OPERATIONS:
            continue  # no body, no id: nothing to refuse but the token (test_401_bodies_...)
        if "{id}" in path:
            cases = [(404, None, None)]
        else:
            # An empty body, and one breaking the schema (a required field missing): both 400 invalid_request.
            cases = [(400, None, b""), (400, {"items": []} if "upload" in path else {}, None)]
        for expected, body, data in cases:
            status, answer = await send(http, method, emu.url + path.replace("{id}", "unknown"), body, data)
            if status != expected or problems(_documented_error(method, path, expected), answer):
                failures.append(f"{method} {path}: expected {expected}, got {status} {answer}")
    emu.credits = 0
    for tool in TOOLS:
        if tool.credits == 0:
            continue  # free tools never run out
        status, answer = await send(http, "POST", emu.url + tool.path, valid_body(tool.path))
        if status != 402 or problems(_documented_error("POST", tool.path, 402), answer):
            failures.append(f"POST {tool.path}: expected 402, got {status} {answer}")
    assert failures == []


@pytest.mark.asyncio
async def test_bad_upload_extension_is_422_listing_the_allowed_ones(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(
        http, "POST", emu.url + "/v1/files/upload-urls", {"items": [{"type": "audio", "extension": "mp4"}]}
    )
    # The sentence of the older spec's example (the 2026-11 spec documents the 422 without one).
    expected = (
        "'mp4' is an invalid audio extension. Possible extensions are "
        f"'{', '.join(upload_extensions_listed()['audio'])}'"
    )
    assert (status, answer) == (422, {"code": "unprocessable_entity", "message": expected})


# -- the generated rules and the hand-written table against the spec -----------------------------------------


def test_generated_rules_are_what_the_pinned_spec_gives() -> None:
    import generate_rules  # tools/ is on sys.path through tests/_spec.py

    shipped = (Path(generate_rules.OUT)).read_text(encoding="utf-8")
    assert generate_rules.render(generate_rules.load_spec(None)) == shipped, "run `nox -s gen`"


@pytest.mark.parametrize("tool", [pytest.param(tool, id=tool.path) for tool in TOOLS])
def test_endpoint_table_agrees_with_the_spec(tool: Any) -> None:
    op = operation("POST", tool.path)
    assert KIND_BY_TAG[op["tags"][0]] == tool.kind == GENERATED[f"POST {tool.path}"]["kind"]
    get_schema = response_schema("GET", f"/v1/{tool.kind}-projects/{{id}}", "200")
    possible = re.findall(r"[A-Z][A-Z_]+", get_schema["properties"]["type"]["description"].split("are", 1)[1])
    assert tool.type in possible


def upload_extensions_listed() -> dict[str, list[str]]:
    description = operation("POST", "/v1/files/upload-urls")["description"]
    return {
        kind: [ext.strip() for ext in exts.split(",")]
        for kind, exts in re.findall(r"^- (video|audio|image|gif): (.+)$", description, flags=re.MULTILINE)
    }


def test_upload_extensions_agree_with_the_spec() -> None:
    listed = upload_extensions_listed()
    assert list(UPLOAD_EXTENSIONS["audio"]) == listed["audio"]
    assert list(UPLOAD_EXTENSIONS["image"]) == listed["image"]
    # gif inputs (face-swap's video_file_path) are accepted under the "video" type.
    assert set(UPLOAD_EXTENSIONS["video"]) == set(listed["video"]) | set(listed["gif"])
