"""Simulated members: join a community over HTTP (or through a handler), set preferences, some leave.

``simulate_members(target, community, n, rng)`` where ``target`` is the API's base URL (the local
cloud's API server, or a deployed stage's ``ApiUrl``) or a callable taking an API Gateway REST
proxy event and returning the proxy response (the API function's handler).
"""

from __future__ import annotations

import base64
import json
import random
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
LANGUAGES = ("en", "fr", "ar", "es", "pt", "sw")
TOPICS = ("health", "education", "safety-scams", "labour-migration")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _p256dh(rng: random.Random) -> bytes:
    """A browser's public key: a point on P-256 (the API checks the curve), from a random scalar."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ec.derive_private_key(rng.randrange(1, 2**255), ec.SECP256R1())
    return private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _subscription(rng: random.Random, n: int) -> dict[str, Any]:
    key = _p256dh(rng)
    return {
        "endpoint": f"https://push.example/sim/{n}-{rng.getrandbits(48):012x}",
        "keys": {"p256dh": _b64(key), "auth": _b64(bytes(rng.randrange(256) for _ in range(16)))},
    }


class _Http:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def __call__(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None


class _Direct:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def __call__(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        from types import SimpleNamespace

        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        parts = path.strip("/").split("/")
        params = {"id": parts[1]} if len(parts) > 1 else None
        if params and len(parts) == 4:
            params["member_id"] = parts[3]
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": params,
            "stageVariables": None,
            "requestContext": {
                "httpMethod": method,
                "path": path,
                "stage": "local",
                "requestId": "sim",
                "resourcePath": path,
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False,
        }
        context = SimpleNamespace(
            function_name="ApiFunction",
            memory_limit_in_mb=512,
            aws_request_id="sim",
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:api",
        )
        response = self.handler(event, context)
        raw = response.get("body")
        return int(response["statusCode"]), json.loads(raw) if raw else None


def simulate_members(
    target: str | Handler,
    community: str,
    n: int,
    rng: random.Random | None = None,
    leave_ratio: float = 0.1,
    settle: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Join ``n`` members (a few joining twice), give some preferences, let ``leave_ratio`` of them leave.

    Returns the counts, and ``members`` read back from ``GET /communities/{id}`` with what it should be
    (``expected_members``: the count before plus joined minus left). ``settle``: called before that
    last read (the member counter reads the members table's stream: the local cloud's
    ``wait_until_idle``).
    """
    rng = rng or random.Random(0)
    call = _Http(target) if isinstance(target, str) else _Direct(target)
    base = f"/communities/{community}"
    status, before = call("GET", base)
    if status != 200:
        raise RuntimeError(f"GET {base}: {status} {before}")
    statuses: Counter[int] = Counter()
    joined: list[tuple[str, str]] = []
    for i in range(n):
        body: dict[str, Any] = {"web_push": _subscription(rng, i)}
        if rng.random() < 0.6:
            body["languages"] = rng.sample(LANGUAGES, rng.randint(1, 2))
        if rng.random() < 0.4:
            body["topics"] = rng.sample(TOPICS, 1)
        status, answer = call("POST", f"{base}/members", body)
        statuses[status] += 1
        if status == 201:
            joined.append((answer["member_id"], answer["token"]))
            if rng.random() < 0.05:  # a retry: the same subscription again, with the member's token
                statuses[call("POST", f"{base}/members", body, answer["token"])[0]] += 1
    preferences = 0
    for member_id, token in joined:
        if rng.random() < 0.2:
            patch = {
                "muted": rng.random() < 0.3,
                "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
            }
            if call("PATCH", f"{base}/members/{member_id}", patch, token)[0] == 200:
                preferences += 1
    leaving = rng.sample(joined, int(len(joined) * leave_ratio))
    left = sum(call("DELETE", f"{base}/members/{m}", None, t)[0] == 204 for m, t in leaving)
    if settle is not None:
        settle()
    status, after = call("GET", base)
    return {
        "community": community,
        "attempts": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "joined": len(joined),
        "preferences_set": preferences,
        "left": left,
        "members_before": before["members"],
        "members": after["members"] if status == 200 else None,
        "expected_members": before["members"] + len(joined) - left,
    }
