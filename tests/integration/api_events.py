"""API Gateway REST API (v1) Lambda proxy events, shaped exactly as API Gateway sends them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import quote

ACCOUNT_ID = "123456789012"
API_ID = "h3r4ld0api"
STAGE = "dev"

#: The resource (path template) of each route in template.yaml, matched against a concrete path.
RESOURCES = (
    "/communities/{id}/members/{member_id}",
    "/communities/{id}/posts/{post_id}",
    "/communities/{id}/members",
    "/communities/{id}/posts",
    "/communities/{id}/join",
    "/communities/{id}",
    "/openapi.json",
    "/docs",
)


def match(path: str) -> tuple[str, dict[str, str] | None]:
    """The resource template and path parameters (decoded, as API Gateway gives them) of ``path``."""
    from urllib.parse import unquote

    parts = path.strip("/").split("/")
    for resource in RESOURCES:
        template = resource.strip("/").split("/")
        if len(template) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(template, parts, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = unquote(got)
            elif want != got:
                break
        else:
            return resource, params or None
    return path, None


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str | list[str]] | None = None,
    source_ip: str = "203.0.113.7",
    binary: bool = False,
) -> dict[str, Any]:
    """The event for ``method path``; ``body`` may be a str, bytes or JSON-able (then sent as JSON)."""
    resource, path_params = match(path)
    hdrs = {
        "Accept": "*/*",
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "herald-tests/1.0",
        "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        "X-Forwarded-For": source_ip,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    encoded = False
    raw: str | None
    if body is None:
        raw = None
    elif isinstance(body, bytes):
        if binary:
            raw, encoded = base64.b64encode(body).decode(), True
        else:
            raw = body.decode("utf-8", "surrogateescape")
    elif isinstance(body, str):
        raw = body
    else:
        raw = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    multi_query: dict[str, list[str]] | None = None
    single_query: dict[str, str] | None = None
    if query:
        multi_query = {k: (v if isinstance(v, list) else [v]) for k, v in query.items()}
        single_query = {k: v[-1] for k, v in multi_query.items()}
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid4().hex[:6],
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{STAGE}{quote(path)}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": hdrs.get("User-Agent"),
                "user": None,
            },
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "apiId": API_ID,
        },
        "body": raw,
        "isBase64Encoded": encoded,
    }


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body")
    if not body:
        return None
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """Headers, lower-cased names, single and multi-value merged."""
    out = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    for k, values in (response.get("multiValueHeaders") or {}).items():
        out.setdefault(k.lower(), ", ".join(str(v) for v in values))
    return out
