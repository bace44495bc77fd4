"""Every operation of the official spec, called through the SDK against Prism, a mock server of the spec.

Prism validates each request against the spec and answers 422 (or 400/401) when one breaks it, so a call
that succeeds sent what the spec allows. Every response is also inspected for Prism's ``sl-violations``
header: a request-side violation fails the test even when Prism still answered 2xx.

Create calls are built from the spec itself: the required fields (one test) or every field (another), each
with its example when that example is valid, else a value made to fit the schema. Nested objects go as
plain dicts in the first test and as the generated attrs classes in the second.

Prism comes from npm (``nox -s tests`` installs it under ``.nox/prism`` and sets ``MAGIC_HOUR_PRISM``); the
tests skip when Node, Prism or the spec is missing. Prism reads only the local spec file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
import jsonschema
import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async._resources.create import AsyncResource
from tests._spec import load_spec, spec_path

REPO = Path(__file__).resolve().parent.parent
PRISM = os.environ.get("MAGIC_HOUR_PRISM") or str(REPO / ".nox" / "prism" / "node_modules" / ".bin" / "prism")
METHODS = ("get", "post", "put", "patch", "delete")

Operation = tuple[str, str]  # ("POST", "/v1/ai-image-generator")

pytestmark = pytest.mark.asyncio


def _load_spec() -> dict[str, Any]:
    return load_spec()


def _operations(spec: dict[str, Any]) -> set[Operation]:
    return {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m in METHODS}


# -- Prism ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism mocking the spec on a free loopback port; yields its base URL."""
    _load_spec()
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: cannot run the Prism mock server")
    if not os.access(PRISM, os.X_OK):
        pytest.skip(f"Prism not found at {PRISM}: run `nox -s tests` or set MAGIC_HOUR_PRISM")
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    port = _free_port()
    command = [PRISM, "mock", str(spec_path()), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if process.poll() is not None:
                pytest.fail(f"Prism exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"Prism did not listen on {port} within 60 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@attrs.define
class Exchange:
    method: str
    path: str
    status: int
    violations: list[dict[str, Any]]
    body: Any


class Recorder:
    """Records every request the SDK sends (method, path, JSON body) and Prism's verdict on it."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._bodies: dict[int, bytes] = {}
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_chunk_sent.append(self._chunk)
        self.trace.on_request_end.append(self._end)

    async def _chunk(
        self, _: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
    ) -> None:
        self._bodies[id(ctx)] = self._bodies.get(id(ctx), b"") + params.chunk

    async def _end(self, _: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        raw = self._bodies.pop(id(ctx), b"")
        violations = json.loads(params.response.headers.get("sl-violations", "[]"))
        self.exchanges.append(
            Exchange(
                method=params.method,
                path=params.url.path,
                status=params.response.status,
                violations=[v for v in violations if v.get("location", [None])[0] == "request"],
                body=json.loads(raw) if raw else None,
            )
        )

    def matching(self, operation: Operation) -> list[Exchange]:
        method, template = operation
        pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        return [e for e in self.exchanges if e.method == method and pattern.match(e.path)]


@pytest_asyncio.fixture
async def recorded(prism: str) -> AsyncIterator[tuple[mh.AsyncClient, Recorder]]:
    recorder = Recorder()
    async with (
        aiohttp.ClientSession(trace_configs=[recorder.trace]) as session,
        mh.AsyncClient(token="mhk_test_prism", base_url=prism, session=session, max_retries=0) as client,
    ):
        yield client, recorder


# -- request values made from the spec -----------------------------------------------------------------------


def _valid(value: Any, schema: dict[str, Any]) -> bool:
    plain = {k: v for k, v in schema.items() if k not in ("example", "nullable")}
    return jsonschema.Draft4Validator(plain).is_valid(value)


def sample(schema: dict[str, Any], *, every_field: bool) -> Any:
    """A value the schema accepts: its example when valid, else one made to fit."""
    if schema.get("type") == "object":
        required = set(schema.get("required", []))
        return {
            name: sample(prop, every_field=every_field)
            for name, prop in schema.get("properties", {}).items()
            if every_field or name in required
        }
    if "example" in schema and _valid(schema["example"], schema):
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [sample(schema["items"], every_field=every_field)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return (
            "https://example.com/a.mp4" if schema.get("format") == "uri" else "x" * schema.get("minLength", 1)
        )
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    raise AssertionError(f"no sample for {schema}")


def as_attrs(cls: type[Any], wire: dict[str, Any]) -> Any:
    """The generated attrs object equal to a wire dict (the inverse of ``to_wire``)."""
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        key = field.metadata.get("wire", field.name)
        if key not in wire:
            continue
        value, model = wire[key], field.metadata.get("model")
        if model is not None:
            value = [as_attrs(model, v) for v in value] if isinstance(value, list) else as_attrs(model, value)
        kwargs[field.name] = value
    return cls(**kwargs)


def _python_names(body_cls: type[Any], wire: dict[str, Any]) -> dict[str, Any]:
    """Top-level keyword arguments for ``create``: wire names mapped to the parameter names."""
    names = {f.metadata.get("wire", f.name): f.name for f in attrs.fields(body_cls)}
    return {names[key]: value for key, value in wire.items()}


def _body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def _create_resource(client: mh.AsyncClient, path: str) -> Any:
    resource = getattr(client.v1, path.removeprefix("/v1/").replace("-", "_"))
    assert isinstance(resource, AsyncResource)
    return resource


def _body_class(resource: Any) -> type[Any]:
    """The generated body class next to a resource class: ``AsyncFaceSwap`` -> ``FaceSwapBody``."""
    module = sys.modules[type(resource).__module__]
    body: type[Any] = getattr(module, type(resource).__name__.removeprefix("Async") + "Body")
    return body


def _calls(
    client: mh.AsyncClient, spec: dict[str, Any], *, every_field: bool, use_attrs: bool
) -> dict[Operation, Callable[[], Awaitable[object]]]:
    """One SDK call per operation of the spec."""
    v1 = client.v1
    calls: dict[Operation, Callable[[], Awaitable[object]]] = {
        ("POST", "/v1/files/upload-urls"): lambda: v1.files.upload_urls.create(
            items=[{"type": "video", "extension": "mp4"}, {"type": "audio", "extension": "mp3"}]
        ),
        ("GET", "/v1/face-detection/{id}"): lambda: v1.face_detection.get(id="uuid-example"),
        ("GET", "/v1/account"): lambda: v1.account.get(),
        ("GET", "/v1/saved-items"): lambda: v1.saved_items.list(type_="character", limit=20),
    }
    for kind in ("video", "image", "audio"):
        projects = getattr(v1, f"{kind}_projects")
        calls[("GET", f"/v1/{kind}-projects/{{id}}")] = lambda p=projects: p.get(id="cuid-example")
        calls[("DELETE", f"/v1/{kind}-projects/{{id}}")] = lambda p=projects: p.delete(id="cuid-example")
    for method, path in sorted(_operations(spec)):
        if method != "POST" or (method, path) in calls:
            continue
        resource = _create_resource(client, path)
        wire = sample(_body_schema(spec, path), every_field=every_field)
        body_cls = _body_class(resource)
        if use_attrs:
            body = as_attrs(body_cls, wire)
            kwargs = {f.name: getattr(body, f.name) for f in attrs.fields(body_cls)}
        else:
            kwargs = _python_names(body_cls, wire)
        calls[(method, path)] = lambda r=resource, k=kwargs: r.create(**k)
    return calls


async def _run_all(
    client: mh.AsyncClient, recorder: Recorder, calls: dict[Operation, Callable[[], Awaitable[object]]]
) -> list[str]:
    results = await asyncio.gather(*(call() for call in calls.values()), return_exceptions=True)
    failures: list[str] = []
    for operation, result in zip(calls, results, strict=True):
        seen = recorder.matching(operation)
        if isinstance(result, BaseException):
            detail = result.headers.get("sl-violations", "") if isinstance(result, mh.APIStatusError) else ""
            failures.append(f"{operation}: {type(result).__name__}: {result} {detail}")
        elif len(seen) != 1 or not 200 <= seen[0].status < 300:
            failures.append(f"{operation}: expected one 2xx exchange, saw {seen}")
        elif seen[0].violations:
            failures.append(f"{operation}: Prism reported {seen[0].violations}")
    return failures


# -- tests ---------------------------------------------------------------------------------------------------


async def test_every_operation_of_the_spec_succeeds_with_required_fields_as_dicts(
    recorded: tuple[mh.AsyncClient, Recorder],
) -> None:
    client, recorder = recorded
    spec = _load_spec()
    calls = _calls(client, spec, every_field=False, use_attrs=False)
    assert set(calls) == _operations(spec)
    failures = await _run_all(client, recorder, calls)
    assert failures == []
    exercised = {op for op in _operations(spec) if recorder.matching(op)}
    assert exercised == _operations(spec)  # all of them: 39 in the spec of this writing


async def test_every_create_sends_every_field_by_its_wire_name_from_attrs_classes(
    recorded: tuple[mh.AsyncClient, Recorder],
) -> None:
    client, recorder = recorded
    spec = _load_spec()
    calls = _calls(client, spec, every_field=True, use_attrs=True)
    with pytest.warns(
        DeprecationWarning, match="is deprecated"
    ) as caught:  # every field: deprecated ones too
        failures = await _run_all(client, recorder, calls)
    assert failures == []
    warned = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, DeprecationWarning)}
    assert warned == {"orientation", "max_resolution", "width", "height"}
    creates = [op for op in calls if op[0] == "POST" and op[1] != "/v1/files/upload-urls"]
    assert len(creates) == 29  # 28 render tools and face detection
    for operation in creates:
        (exchange,) = recorder.matching(operation)
        # Prism accepted it, and it is the spec's full body: every field present, under its JSON name.
        assert exchange.body == sample(_body_schema(spec, operation[1]), every_field=True), operation


async def test_prism_rejects_what_the_spec_forbids(recorded: tuple[mh.AsyncClient, Recorder]) -> None:
    """The mock really validates: without this, a permissive mock would make the tests above vacuous."""
    client, recorder = recorded
    with pytest.raises(mh.UnprocessableEntityError):
        await client.v1.ai_image_generator.create(
            image_count=1,
            style={"prompt": "x"},
            model="not-a-model",  # type: ignore[arg-type]
        )
    (exchange,) = recorder.matching(("POST", "/v1/ai-image-generator"))
    assert exchange.status == 422
    assert any(v["location"][-1] == "model" for v in exchange.violations)


async def test_upload_urls_create_returns_what_the_mock_sends(
    recorded: tuple[mh.AsyncClient, Recorder],
) -> None:
    """Prism (like the official mock server) answers with the spec's example, two URLs, whatever was asked."""
    client, _ = recorded
    answer = await client.v1.files.upload_urls.create(items=[{"type_": "video", "extension": "mp4"}])
    assert [item.file_path for item in answer.items] == ["api-assets/id/video.mp4", "api-assets/id/audio.mp3"]
