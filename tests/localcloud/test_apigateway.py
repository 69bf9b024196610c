"""The local API Gateway without sockets: routing, the proxy event, the proxy response, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from herald_tools.localcloud import ApiGateway, ApiRequest, ApiSpec, InvocationResult, Router, RouteSpec
from herald_tools.localcloud.apigateway import (
    MalformedResponse,
    RouteMatch,
    build_event,
    media_type_matches,
    translate_response,
)

from .conftest import FIXTURES

REFERENCE_EVENT = FIXTURES / "apigateway-rest-proxy-event.json"


def api(
    *routes: tuple[str, str], cors: dict[str, str] | None = None, binary: list[str] | None = None
) -> ApiSpec:
    return ApiSpec(
        logical_id="Api",
        api_id="a1b2c3d4e5",
        stage="test",
        binary_media_types=binary or [],
        cors=cors,
        routes=[RouteSpec(function=f"{m} {p}", event="E", path=p, method=m) for m, p in routes],
    )


ROUTES = api(
    ("GET", "/communities/{id}"),
    ("PATCH", "/communities/{id}"),
    ("GET", "/communities/featured"),
    ("DELETE", "/communities/{id}/members/{member_id}"),
    ("ANY", "/files/{proxy+}"),
    ("GET", "/files/readme"),
    ("GET", "/"),
    ("ANY", "/things"),
)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("GET", "/communities/abc", "GET /communities/{id}", {"id": "abc"}),
        ("PATCH", "/communities/abc/", "PATCH /communities/{id}", {"id": "abc"}),  # trailing slash
        ("GET", "/communities/featured", "GET /communities/featured", None),  # literal beats {id}
        (
            "DELETE",
            "/communities/c1/members/m%2F2",
            "DELETE /communities/{id}/members/{member_id}",
            {"id": "c1", "member_id": "m%2F2"},  # still percent-encoded, as REST APIs hand it over
        ),
        ("GET", "/files/a/b/c.txt", "ANY /files/{proxy+}", {"proxy": "a/b/c.txt"}),
        ("POST", "/files/a", "ANY /files/{proxy+}", {"proxy": "a"}),
        ("GET", "/files/readme", "GET /files/readme", None),  # literal beats greedy
        ("GET", "/", "GET /", None),
        ("HEAD", "/things", "ANY /things", None),
    ],
)
def test_routes(method: str, path: str, function: str, params: dict[str, str] | None) -> None:
    match = Router([ROUTES]).match(method, path)
    assert (match.status, match.function, match.path_parameters) == (200, function, params)


def test_the_resource_is_chosen_before_the_method() -> None:
    # As API Gateway does: /files/readme is the resource, it has no DELETE, so 403 although
    # {proxy+} has ANY.
    router = Router([api(("GET", "/files/readme"), ("ANY", "/files/{proxy+}"))])
    assert router.match("DELETE", "/files/readme").status == 403


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/communities", 404),  # no resource for the parent
        ("GET", "/files", 404),  # {proxy+} needs at least one segment
        ("GET", "/communities/a/b", 404),
        ("POST", "/communities/abc", 403),  # the resource exists, the method does not
        ("OPTIONS", "/communities/abc", 403),  # no CORS configured
    ],
)
def test_unmatched(method: str, path: str, status: int) -> None:
    assert Router([ROUTES]).match(method, path).status == status


def test_preflight_only_when_cors_is_configured() -> None:
    router = Router([api(("GET", "/x"), cors={"Access-Control-Allow-Origin": "*"})])
    match = router.match("OPTIONS", "/x")
    assert match.status == 200 and match.preflight and match.function is None
    # An explicit OPTIONS route goes to the function.
    router = Router([api(("GET", "/x"), ("OPTIONS", "/x"), cors={"Access-Control-Allow-Origin": "*"})])
    assert router.match("OPTIONS", "/x").function == "OPTIONS /x"


def test_literal_segments_sort_before_parameters_at_every_depth() -> None:
    router = Router([api(("GET", "/{a}/fixed"), ("GET", "/fixed/{b}"))])
    assert router.match("GET", "/fixed/fixed").function == "GET /fixed/{b}"
    assert router.match("GET", "/other/fixed").function == "GET /{a}/fixed"


def _shape(value: Any) -> Any:
    """A JSON document's keys (in order) with its leaves reduced to their type."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_the_event_has_the_shape_of_api_gateways_rest_proxy_event() -> None:
    reference = json.loads(REFERENCE_EVENT.read_text())
    spec = api(("GET", "/my/path"))
    request = ApiRequest(
        "GET",
        "/my/path?parameter1=value1&parameter1=value2&parameter2=value",
        headers=[("Header1", "value1"), ("Header2", "value1"), ("Header2", "value2"), ("User-Agent", "ua")],
        body=b"Hello from Lambda!",
        source_ip="192.0.2.1",
    )
    event = build_event(
        request, Router([spec]).match("GET", "/my/path"), server_port=3000, now=1583349317.135
    )
    # Same keys in the same order, same types, same nulls (headers aside: API Gateway adds some).
    headers = ("headers", "multiValueHeaders")
    assert _shape({k: v for k, v in event.items() if k not in headers}) == _shape(
        {k: v for k, v in reference.items() if k not in headers}
    )
    assert list(event) == list(reference)
    assert event["multiValueQueryStringParameters"] == reference["multiValueQueryStringParameters"]
    assert event["queryStringParameters"] == {"parameter1": "value2", "parameter2": "value"}  # the last value
    assert event["headers"]["Header2"] == "value2"
    assert event["multiValueHeaders"]["Header2"] == ["value1", "value2"]
    assert event["headers"]["X-Forwarded-For"] == "192.0.2.1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    context = event["requestContext"]
    assert context["requestTime"] == reference["requestContext"]["requestTime"]
    assert context["requestTimeEpoch"] == reference["requestContext"]["requestTimeEpoch"]
    assert context["path"] == "/my/path" and context["stage"] == "test"  # requested at the root
    assert context["apiId"] == context["domainPrefix"] == "a1b2c3d4e5"
    assert context["accountId"] == "123456789012" and context["protocol"] == "HTTP/1.1"
    assert context["identity"]["sourceIp"] == "192.0.2.1" and context["identity"]["userAgent"] == "ua"
    assert len(context["resourceId"]) == 6
    assert event["body"] == "Hello from Lambda!" and event["isBase64Encoded"] is False


def test_event_nulls_and_bodies() -> None:
    spec = api(("POST", "/p/{id}"), binary=["image/png"])
    match = Router([spec]).match("POST", "/p/1")
    bare = build_event(ApiRequest("POST", "/p/1"), match)
    assert bare["queryStringParameters"] is None and bare["multiValueQueryStringParameters"] is None
    assert bare["body"] is None and bare["isBase64Encoded"] is False
    assert bare["pathParameters"] == {"id": "1"}
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    image = build_event(ApiRequest("POST", "/p/1", [("Content-Type", "image/png")], png), match)
    assert image["isBase64Encoded"] is True and base64.b64decode(image["body"]) == png
    # Not a binary media type, but not UTF-8 either: base64 rather than a mangled string.
    odd = build_event(ApiRequest("POST", "/p/1", [("Content-Type", "text/plain")], b"\xff\xfe"), match)
    assert odd["isBase64Encoded"] is True and base64.b64decode(odd["body"]) == b"\xff\xfe"
    text = build_event(
        ApiRequest("POST", "/p/1", [("content-type", "application/json")], b'{"a":"\xc3\xa9"}'), match
    )
    assert text["body"] == '{"a":"é"}' and text["isBase64Encoded"] is False
    assert text["headers"] is not None and "content-type" in text["headers"]  # case as received
    blank = build_event(ApiRequest("POST", "/p/1?flag&x=a%20b+c"), match)
    assert blank["queryStringParameters"] == {"flag": "", "x": "a b c"}  # values decoded


@pytest.mark.parametrize(
    ("media_type", "patterns", "expected"),
    [
        ("image/png", ["image/png"], True),
        ("IMAGE/PNG; q=0.9", ["image/png"], True),
        ("image/jpeg", ["image/*"], True),
        ("text/plain", ["*/*"], True),
        ("text/plain", ["image/png"], False),
        (None, ["*/*"], False),
    ],
)
def test_media_type_matches(media_type: str | None, patterns: list[str], expected: bool) -> None:
    assert media_type_matches(media_type, patterns) is expected


def test_translate_response_headers_and_body() -> None:
    status, headers, body = translate_response(
        {
            "statusCode": "201",
            "headers": {"Content-Type": "application/json", "X-One": 1, "Set-Cookie": "a=1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": '{"ok": true}',
            "isBase64Encoded": False,
        }
    )
    assert status == 201 and body == b'{"ok": true}'
    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]  # merged, not duplicated
    assert ("X-One", "1") in headers
    assert translate_response({"statusCode": 204}) == (204, [], b"")


def test_translate_response_decodes_base64_only_for_binary_accept_types() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    result = {"statusCode": 200, "body": base64.b64encode(png).decode(), "isBase64Encoded": True}
    assert translate_response(result, accept="image/png", binary_media_types=["image/png"])[2] == png
    # API Gateway looks at the first Accept type: anything else gets the base64 text.
    assert (
        translate_response(result, accept="*/*", binary_media_types=["image/png"])[2]
        == result["body"].encode()
    )
    assert translate_response(result, accept=None, binary_media_types=["*/*"])[2] == result["body"].encode()
    assert translate_response(result, accept="text/html", binary_media_types=["*/*"])[2] == png


@pytest.mark.parametrize(
    "result",
    [
        None,
        "a string",
        {"body": "no status"},
        {"statusCode": True},
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": {"X": ["a list"]}},
        {"statusCode": 200, "multiValueHeaders": {"X": "not a list"}},
        {"statusCode": 200, "isBase64Encoded": "yes"},
        {"statusCode": 200, "cookies": ["a=1"]},  # a payload 2.0 key
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
    ],
)
def test_malformed_responses(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        translate_response(result, accept="image/png", binary_media_types=["image/png"])


class FakeInvoker:
    def __init__(self, result: InvocationResult) -> None:
        self.result = result
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> InvocationResult:
        self.events.append((function, event))
        return self.result


@pytest.fixture
def gateway():
    gw = ApiGateway(port=0, max_payload=1024)
    yield gw
    gw.stop()


def ok(result: Any) -> InvocationResult:
    return InvocationResult(ok=True, request_id="r", result=result)


def test_gateway_invokes_and_answers(gateway: ApiGateway) -> None:
    invoker = FakeInvoker(ok({"statusCode": 200, "body": "hi"}))
    gateway.configure([ROUTES], invoker)
    response = gateway.handle(ApiRequest("GET", "/communities/c1?x=1"))
    assert response.status == 200 and response.body == b"hi"
    assert response.header("Content-Type") == "application/json"  # API Gateway's default
    assert response.header("x-amzn-RequestId") == invoker.events[0][1]["requestContext"]["requestId"]
    assert invoker.events[0][0] == "GET /communities/{id}"


@pytest.mark.parametrize(
    ("request_", "result", "status", "message"),
    [
        (ApiRequest("GET", "/nope"), ok({}), 404, "Missing Authentication Token"),
        (ApiRequest("POST", "/communities/c1"), ok({}), 403, "Missing Authentication Token"),
        (ApiRequest("GET", "/communities/c1"), ok({"body": "x"}), 502, "Internal server error"),
        (
            ApiRequest("GET", "/communities/c1"),
            InvocationResult(ok=False, request_id="r", error_type="RuntimeError", error_message="boom"),
            502,
            "Internal server error",
        ),
        (
            ApiRequest("GET", "/communities/c1"),
            InvocationResult(ok=False, request_id="r", error_type="Sandbox.Timedout", duration_ms=30_000),
            504,
            "Endpoint request timed out",
        ),
        (ApiRequest("POST", "/files/big", body=b"x" * 1025), ok({}), 413, "Request Too Long"),
    ],
)
def test_gateway_errors(
    gateway: ApiGateway, request_: ApiRequest, result: InvocationResult, status: int, message: str
) -> None:
    gateway.configure([ROUTES], FakeInvoker(result))
    response = gateway.handle(request_)
    assert (response.status, response.json()) == (status, {"message": message})
    assert response.header("x-amzn-ErrorType")


def test_gateway_preflight(gateway: ApiGateway) -> None:
    cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type"}
    invoker = FakeInvoker(ok({"statusCode": 200}))
    gateway.configure([api(("GET", "/x/{id}"), ("DELETE", "/x/{id}"), cors=cors)], invoker)
    response = gateway.handle(ApiRequest("OPTIONS", "/x/1"))
    assert response.status == 200 and not invoker.events
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("Access-Control-Allow-Methods") == "DELETE,GET,OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == "Content-Type"


def test_route_match_defaults() -> None:
    assert RouteMatch(404).function is None
