"""Property-based: schemathesis generates requests from the API's own OpenAPI document; every answer
must be documented and conform, and none may be a 5xx. The handler answers through a WSGI shim
that turns each request into the REST proxy event API Gateway would send."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from herald.api.app import openapi
from herald.api.settings import ApiSettings
from herald.content.models import CommunityProfile
from herald.ingest.ports import Change
from tests.integration.api_events import rest_event
from tests.integration.conftest import Api, LambdaContext
from tests.integration.test_api import p256_point

COMMUNITY = "safe-routes"
DOCUMENT = openapi(ApiSettings(content_table="c", members_table="m", member_token_secret_arn="s"))
schema = schemathesis.openapi.from_dict(DOCUMENT)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    from herald.api.app import handle

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else None
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        query.setdefault(key, []).append(value)
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    event = rest_event(environ["REQUEST_METHOD"], path, body=body, headers=headers, query=query or None)
    response = handle(event, LambdaContext())
    out_headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        out_headers.setdefault(name, ", ".join(values))
    raw = response.get("body") or ""
    data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
    start_response(f"{response['statusCode']} X", list(out_headers.items()))
    return [data]


@pytest.fixture
def seeded(api: Api) -> Api:
    profile = CommunityProfile(name="Safe Routes", members=222_000)
    api.content().commit(Change(profile=(COMMUNITY, profile)))
    return api


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_document(case: Any, seeded: Api) -> None:
    if "id" in (case.path_parameters or {}) and hash(str(case.path_parameters)) % 2:
        case.path_parameters["id"] = COMMUNITY  # half the cases on a community that exists
    response = case.call(app=wsgi_app)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


# ----------------------------------------------------------------------------- hostile bodies


def _nested(depth: int, leaf: Any, as_object: bool) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf} if as_object else [leaf]
    return leaf


_KEYS = {"p256dh": p256_point(31337), "auth": "AAAAAAAAAAAAAAAAAAAAAA"}
_WEB_PUSH = {"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": _KEYS}
_FIELDS = ("web_push", "device", "languages", "topics", "muted", "quiet_hours")

#: Bodies no generator derived from the document would send: nesting deeper than any body of the
#: API, numbers of hundreds of digits or beyond a float, NaN and Infinity, objects and lists where
#: strings belong, lone surrogate escapes, and bytes that are not UTF-8.
hostile_json = st.one_of(
    st.builds(
        lambda field, depth, obj: {field: _nested(depth, "x", obj)},
        st.sampled_from(_FIELDS),
        st.integers(33, 400),
        st.booleans(),
    ),
    st.builds(
        lambda field, n: {"web_push": _WEB_PUSH, field: [n]},
        st.sampled_from(_FIELDS),
        st.integers(min_value=10**40, max_value=10**400),
    ),
    st.builds(
        lambda where, value: (
            {"web_push": {**_WEB_PUSH, where: value}}
            if where != "p256dh"
            else {"web_push": {**_WEB_PUSH, "keys": {**_KEYS, "p256dh": value}}}
        ),
        st.sampled_from(["endpoint", "keys", "p256dh"]),
        st.one_of(
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
            st.lists(st.integers(), max_size=3),
            st.integers(),
            st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: "https://a.example/" + c),
        ),
    ),
)
not_json_numbers = st.builds(
    lambda field, token: b'{"' + field.encode() + b'": [' + token + b"]}",
    st.sampled_from(_FIELDS),
    st.sampled_from(
        [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"9" * 5000, b"-" + b"1" * 4400]
    ),
)
too_deep_to_parse = st.builds(
    lambda depth, open_, close: b'{"languages": ' + open_ * depth + close * depth + b"}",
    st.integers(1_100, 5_000),
    st.just(b"["),
    st.just(b"]"),
)
not_utf8 = st.builds(
    lambda prefix, junk: prefix + junk + b'"}',
    st.sampled_from([b'{"languages": ["', b'{"web_push": {"endpoint": "https://fcm.googleapis.com/']),
    st.binary(min_size=1, max_size=20).filter(lambda b: not _utf8(b)),
)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(
    ("path", "method"),
    [("/communities/{id}/members", "POST"), ("/communities/{id}/members/{member_id}", "PATCH")],
)
@given(body=st.one_of(hostile_json, not_json_numbers, too_deep_to_parse, not_utf8))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_hostile_bodies_are_documented_4xx(seeded: Api, path: str, method: str, body: Any) -> None:
    operation = schema[path][method]
    params = {"id": COMMUNITY, "member_id": "0" * 32} if "member_id" in path else {"id": COMMUNITY}
    case = operation.Case(
        path_parameters=params,
        headers={"Authorization": "Bearer x"},
        body=body,
        media_type="application/json",
    )
    response = case.call(app=wsgi_app)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    assert 400 <= response.status_code < 500, (body, response.status_code, response.text[:300])
    answer = response.json()
    assert answer.get("detail") or answer.get("error"), answer
