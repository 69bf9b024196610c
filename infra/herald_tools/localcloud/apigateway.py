"""The local API Gateway: the template's REST APIs on loopback, with the Lambda proxy integration.

Every ``Type: Api`` event of a function is a route (resource path template and method).  A
request is matched against the routes as API Gateway matches it (literal segments before
``{param}`` before greedy ``{proxy+}``; ``ANY`` matches every method), turned into the REST API
(payload format 1.0) proxy event, handed to the function, and the function's proxy response is
turned back into HTTP.  The APIs are served at the root (``http://127.0.0.1:3000/communities/x``),
as on a custom domain, and under their stage as ``execute-api`` URLs serve them
(``http://127.0.0.1:3000/dev/communities/x``); the event names the stage either way
(``requestContext.stage``), and ``requestContext.path`` is the path as requested, with the stage
only when the request had it, so that what builds URLs from it (Swagger UI's server URL) points
back where the request came from.

Requests are served concurrently (a thread each); the function's worker pool decides how many
run at once. A request that finds no free execution environment within the local cloud's queue
time is answered as API Gateway answers a throttled Lambda proxy integration: 500
``{"message": "Internal server error"}``.

Not emulated: authorizers, API keys and usage plans, API Gateway's own throttling (stage and
account rate limits), request validation, mapping templates, custom domains, stage variables
(always null), HTTP APIs (``Type: HttpApi``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .functions import THROTTLED, InvocationResult
from .provision import ApiSpec, local_id
from .template import ACCOUNT_ID, REGION

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
INTEGRATION_TIMEOUT_SECONDS = 29.0  # API Gateway's integration timeout
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Invoke = Callable[[str, dict[str, Any]], InvocationResult]


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------


@dataclass
class Resource:
    """A resource path of an API with its methods (method -> function logical id)."""

    api: ApiSpec
    path: str  # the template path: /communities/{id}
    segments: tuple[str, ...]
    methods: dict[str, str] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return local_id(self.api.api_id, self.path, length=6)

    def match(self, segments: Sequence[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(specificity, path parameters) if ``segments`` fall under this resource, else None."""
        params: dict[str, str] = {}
        score: list[int] = []
        for i, part in enumerate(self.segments):
            if part.startswith("{") and part.endswith("+}"):
                if i != len(self.segments) - 1 or len(segments) <= i:
                    return None
                params[part[1:-2]] = "/".join(segments[i:])
                score.append(0)
                return tuple(score), params
            if i >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[i]
                score.append(1)
            elif part == segments[i]:
                score.append(2)
            else:
                return None
        if len(segments) != len(self.segments):
            return None
        return tuple(score), params


@dataclass
class RouteMatch:
    """What a request resolves to: a function (status 200), a CORS preflight, or an error status."""

    status: int  # 200: matched; 403: the resource has no such method; 404: no resource
    resource: Resource | None = None
    function: str | None = None
    path_parameters: dict[str, str] | None = None
    preflight: bool = False


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


class Router:
    """Matches (method, path) against the resources of the APIs, as API Gateway does."""

    def __init__(self, apis: Iterable[ApiSpec]) -> None:
        self.resources: list[Resource] = []
        by_path: dict[str, Resource] = {}
        for api in apis:
            for route in api.routes:
                path = "/" + "/".join(_segments(route.path))
                resource = by_path.get(path)
                if resource is None:
                    resource = Resource(api, path, tuple(_segments(path)))
                    by_path[path] = resource
                    self.resources.append(resource)
                elif resource.api is not api:
                    log.warning(
                        "%s %s of %s is shadowed by %s",
                        route.method,
                        path,
                        api.logical_id,
                        resource.api.logical_id,
                    )
                    continue
                if route.method in resource.methods:
                    log.warning(
                        "%s %s: more than one function; %s is used", route.method, path, resource.methods
                    )
                    continue
                resource.methods[route.method] = route.function

    def match(self, method: str, path: str) -> RouteMatch:
        segments = _segments(path)
        best: tuple[tuple[int, ...], Resource, dict[str, str]] | None = None
        for resource in self.resources:
            found = resource.match(segments)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], resource, found[1])
        if best is None:
            return RouteMatch(status=404)
        _, resource, params = best
        function = resource.methods.get(method) or resource.methods.get("ANY")
        if function is not None:
            return RouteMatch(200, resource, function, params or None)
        if method == "OPTIONS" and resource.api.cors is not None:
            return RouteMatch(200, resource, None, params or None, preflight=True)
        return RouteMatch(status=403, resource=resource)


# --------------------------------------------------------------------------------------------
# Requests, events and responses
# --------------------------------------------------------------------------------------------


@dataclass
class ApiRequest:
    """An HTTP request as received: the raw target (path and query), headers in order, body."""

    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class ApiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class MalformedResponse(ValueError):
    """The function's result is not a valid Lambda proxy response."""


def media_type_matches(media_type: str | None, patterns: Iterable[str]) -> bool:
    """Whether ``media_type`` (parameters ignored) is one of ``patterns`` (``type/*`` and ``*/*`` allowed)."""
    if not media_type:
        return False
    mtype = media_type.split(";", 1)[0].strip().lower()
    major = mtype.split("/", 1)[0]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p in ("*/*", mtype) or (p.endswith("/*") and p[:-2] == major):
            return True
    return False


def _request_time(epoch: float) -> str:
    t = time.gmtime(epoch)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"


def build_event(
    request: ApiRequest,
    match: RouteMatch,
    *,
    request_id: str | None = None,
    extended_request_id: str | None = None,
    now: float | None = None,
    server_port: int | None = None,
    stage_prefix: bool = False,
) -> dict[str, Any]:
    """The REST API (payload format 1.0) Lambda proxy event API Gateway sends for ``request``.

    ``stage_prefix``: the request's path starts with the stage (``/dev/x``, as on an
    ``execute-api`` URL); ``path`` is then the rest and ``requestContext.path`` the whole.
    """
    assert match.resource is not None
    api = match.resource.api
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    extended_request_id = extended_request_id or base64.b64encode(secrets.token_bytes(11)).decode()
    raw_path, _, query = request.target.partition("?")
    base = f"/{api.stage}" if stage_prefix else ""
    if base and raw_path.startswith(base):
        raw_path = raw_path[len(base) :]
    path = raw_path or "/"  # REST APIs hand the path (and path parameters) over still percent-encoded

    headers_in = list(request.headers)
    names = {k.lower() for k, _ in headers_in}
    if "x-forwarded-for" not in names:
        headers_in.append(("X-Forwarded-For", request.source_ip))
    if "x-forwarded-port" not in names and server_port is not None:
        headers_in.append(("X-Forwarded-Port", str(server_port)))
    if "x-forwarded-proto" not in names:
        headers_in.append(("X-Forwarded-Proto", "http"))
    if "x-amzn-trace-id" not in names:
        headers_in.append(("X-Amzn-Trace-Id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}"))
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers_in:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)

    query_params: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        query_params[name] = value
        multi_query.setdefault(name, []).append(value)

    body: str | None = None
    is_base64 = False
    if request.body:
        content_type = request.header("Content-Type")
        if media_type_matches(content_type, api.binary_media_types):
            body, is_base64 = base64.b64encode(request.body).decode(), True
        else:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(request.body).decode(), True

    host = request.header("Host") or f"{api.api_id}.execute-api.{REGION}.amazonaws.com"
    user_agent = request.header("User-Agent")
    return {
        "resource": match.resource.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query_params or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": match.resource.resource_id,
            "resourcePath": match.resource.path,
            "httpMethod": request.method,
            "extendedRequestId": extended_request_id,
            "requestTime": _request_time(now),
            "path": f"{base}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": request.protocol,
            "stage": api.stage,
            "domainPrefix": api.api_id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": host,
            "apiId": api.api_id,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponse(f"header value {value!r} is not a string")


def translate_response(
    result: Any, *, accept: str | None = None, binary_media_types: Sequence[str] = ()
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy response as (status, headers, body); MalformedResponse if it is not one.

    A base64 body (``isBase64Encoded``) is decoded, as API Gateway does, when the request's first
    ``Accept`` type is one of the API's binary media types; otherwise the base64 text is returned.
    """
    if not isinstance(result, dict):
        raise MalformedResponse(f"the result is a {type(result).__name__}, not an object")
    unknown = set(result) - RESPONSE_KEYS
    if unknown:
        raise MalformedResponse(f"unexpected key(s) {sorted(unknown)}")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int | str):
        raise MalformedResponse(f"statusCode {status!r} is not an integer")
    try:
        code = int(status)
    except ValueError:
        raise MalformedResponse(f"statusCode {status!r} is not an integer") from None
    if not 100 <= code <= 599:
        raise MalformedResponse(f"statusCode {code} is out of range")
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] is not a list")
        headers.extend((str(name), _header_value(v)) for v in values)
    for name, value in single.items():
        pair = (str(name), _header_value(value))
        if pair not in headers:
            headers.append(pair)
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponse(f"body is a {type(body).__name__}, not a string")
    is_base64 = result.get("isBase64Encoded", False)
    if not isinstance(is_base64, bool):
        raise MalformedResponse("isBase64Encoded is not a boolean")
    payload = (body or "").encode("utf-8")
    first_accept = (accept or "").split(",", 1)[0]
    if is_base64 and body and media_type_matches(first_accept, binary_media_types):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("isBase64Encoded is true but the body is not base64") from None
    return code, headers, payload


# --------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------


def _error(status: int, message: str, error_type: str) -> ApiResponse:
    return ApiResponse(
        status,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)],
        json.dumps({"message": message}).encode(),
    )


class ApiGateway:
    """An HTTP server on loopback serving the APIs' routes by invoking their functions.

    The socket is bound at construction (``port=0``: any free port), so :attr:`url` is known
    before the resources are provisioned; :meth:`configure` gives it the APIs and the invoker,
    :meth:`start` starts serving.  :meth:`handle` serves one request without sockets.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_payload: int = MAX_PAYLOAD_BYTES
    ) -> None:
        self.max_payload = max_payload
        self.router = Router(())
        self.apis: list[ApiSpec] = []
        self._invoke: Invoke | None = None
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.gateway = self
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.requests = 0

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def configure(self, apis: Iterable[ApiSpec], invoke: Invoke) -> None:
        self.apis = list(apis)
        self.router = Router(self.apis)
        self._invoke = invoke

    def start(self) -> ApiGateway:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()
        log.debug("API Gateway listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    # -- one request ------------------------------------------------------------------------------
    def handle(self, request: ApiRequest) -> ApiResponse:
        with self._lock:
            self.in_flight += 1
            self.requests += 1
        try:
            return self._handle(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _route(self, method: str, path: str) -> tuple[RouteMatch, bool]:
        """The route of ``path`` at the root, else under an API's stage (``/dev/...``): (match, staged)."""
        match = self.router.match(method, path)
        if match.status != 404:
            return match, False
        for stage in sorted({api.stage for api in self.apis}):
            prefix = f"/{stage}"
            if path == prefix or path.startswith(prefix + "/"):
                staged = self.router.match(method, path[len(prefix) :] or "/")
                if staged.resource is not None and staged.resource.api.stage == stage:
                    return staged, True
        return match, False

    def _handle(self, request: ApiRequest) -> ApiResponse:
        request_id = str(uuid.uuid4())
        extended_id = base64.b64encode(secrets.token_bytes(11)).decode()
        if len(request.body) > self.max_payload:
            return _error(413, "Request Too Long", "RequestTooLargeException")
        path = request.target.partition("?")[0]
        match, staged = self._route(request.method, path)
        if match.status != 200 or match.resource is None:
            return _error(match.status, "Missing Authentication Token", "MissingAuthenticationTokenException")
        ids = [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", extended_id)]
        if match.preflight:
            cors = dict(match.resource.api.cors or {})
            if "Access-Control-Allow-Methods" not in cors:
                methods = set(match.resource.methods)
                methods = set(ALL_METHODS) if "ANY" in methods else methods | {"OPTIONS"}
                cors["Access-Control-Allow-Methods"] = ",".join(sorted(methods))
            return ApiResponse(200, [("Content-Type", "application/json"), *cors.items(), *ids], b"{}")
        assert match.function is not None and self._invoke is not None
        event = build_event(
            request,
            match,
            request_id=request_id,
            extended_request_id=extended_id,
            server_port=self.port,
            stage_prefix=staged,
        )
        result = self._invoke(match.function, event)
        if not result.ok:
            if result.error_type == THROTTLED:
                # Lambda refused the invocation; API Gateway has no proxy response to pass on.
                log.warning("%s %s: throttled: %s", request.method, path, result.error_message)
                return _error(500, "Internal server error", "InternalServerErrorException")
            log.debug("%s %s: %s: %s", request.method, path, result.error_type, result.error_message)
            if result.duration_ms >= INTEGRATION_TIMEOUT_SECONDS * 1000:
                return _error(504, "Endpoint request timed out", "IntegrationTimeoutException")
            return _error(502, "Internal server error", "InternalServerErrorException")
        try:
            status, headers, body = translate_response(
                result.result,
                accept=request.header("Accept"),
                binary_media_types=match.resource.api.binary_media_types,
            )
        except MalformedResponse as exc:
            log.warning("%s %s: malformed Lambda proxy response: %s", request.method, path, exc)
            return _error(502, "Internal server error", "InternalServerErrorException")
        if result.duration_ms >= INTEGRATION_TIMEOUT_SECONDS * 1000:
            return _error(504, "Endpoint request timed out", "IntegrationTimeoutException")
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return ApiResponse(status, [*headers, *ids], body)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a burst of clients connecting at once would see
    # refused or reset connections (and SYN retries a second apart) before a thread accepts them.
    request_queue_size = 128
    gateway: ApiGateway


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "herald-local-apigateway"
    sys_version = ""
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body; None when it is larger than ``limit`` (then it is read and dropped)."""
        chunks: list[bytes] = []
        size = 0

        def take(length: int) -> None:
            nonlocal size
            while length > 0:
                data = self.rfile.read(min(length, 1 << 20))
                if not data:
                    raise ConnectionError("the client closed the connection")
                size += len(data)
                length -= len(data)
                if size <= limit:
                    chunks.append(data)

        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(65537)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                take(length)
                self.rfile.readline(3)
        else:
            take(int(self.headers.get("Content-Length") or 0))
        return b"".join(chunks) if size <= limit else None

    def _serve(self) -> None:
        gateway = self.server.gateway
        try:
            body = self._read_body(gateway.max_payload)
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        if body is None:
            response = _error(413, "Request Too Long", "RequestTooLargeException")
        else:
            request = ApiRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            try:
                response = gateway.handle(request)
            except Exception:
                log.exception("%s %s failed", self.command, self.path)
                response = _error(502, "Internal server error", "InternalServerErrorException")
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
