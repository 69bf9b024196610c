"""The members API against hostile input: no takeover of a subscription, no request to a private
host, keys checked as keys, no 5xx from any body, and responses within Lambda's 6 MB."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.integration.api_events import response_json, rest_event
from tests.integration.conftest import Api, LambdaContext
from tests.integration.test_api import AUTH, COMMUNITY, bearer, join, p256_point, post, seed, web_push
from tests.member_counts import settle_api

#: Lambda's limit on a synchronous invocation's response (the proxy response, as JSON).
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
MEMBERS = f"/communities/{COMMUNITY}/members"


def members(api: Api) -> int:
    """The member count once the counter has read the stream."""
    settle_api(api)
    return int(response_json(api.call("GET", f"/communities/{COMMUNITY}"))["members"])


# ----------------------------------------------------------------------------- takeover


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/sub-1",
        "https://FCM.GoogleAPIs.com/fcm/send/sub-1",
        "https://fcm.googleapis.com:443/fcm/send/sub-1",
        "https://fcm.googleapis.com/fcm/send/sub-1/",
        "https://fcm.googleapis.com/fcm/send/sub-1#x",
        "HTTPS://fcm.googleapis.com./fcm/send/sub-1?",
    ],
)
def test_a_claimed_subscription_is_never_handed_over(api: Api, endpoint: str) -> None:
    seed(api)
    victim = response_json(join(api, {"web_push": web_push(1), "topics": ["health"]}))
    before = api.members().member(COMMUNITY, victim["member_id"])
    attacker_keys = {"p256dh": p256_point(99), "auth": AUTH}
    for headers in (None, bearer("not-the-token"), bearer(victim["token"].swapcase())):
        response = api.call(
            "POST",
            MEMBERS,
            body={"web_push": {"endpoint": endpoint, "keys": attacker_keys}, "languages": ["fr"]},
            headers=headers,
        )
        assert response["statusCode"] == 409, response
        assert victim["member_id"] not in response["body"] and victim["token"] not in response["body"]
        assert "token" in response_json(response)["error"]
    # The same endpoint with a new device: still nothing claimed, nothing changed.
    device = {"platform": "fcm", "token": "attacker-device-" + "x" * 40}
    with_device = join(api, {"web_push": {"endpoint": endpoint, "keys": attacker_keys}, "device": device})
    assert with_device["statusCode"] == 409
    after = api.members().member(COMMUNITY, victim["member_id"])
    assert after == before  # keys, preferences, subscriptions untouched
    assert members(api) == 222_001
    # The member itself, presenting its token, rejoins (a reload) under any spelling of its endpoint.
    mine = api.call(
        "POST",
        MEMBERS,
        body={"web_push": {"endpoint": endpoint, "keys": web_push(1)["keys"]}},
        headers=bearer(victim["token"]),
    )
    assert mine["statusCode"] == 200 and response_json(mine) == victim
    assert members(api) == 222_001


def test_a_retry_repeating_the_stored_keys_gets_its_member_back(api: Api) -> None:
    # A join whose answer was lost: the browser sends the same subscription again, keys and all.
    # Its auth secret is known only to the browser and to Herald: that is the proof.
    seed(api)
    member = response_json(join(api, {"web_push": web_push(1)}))
    again = join(api, {"web_push": web_push(1)})
    assert again["statusCode"] == 200 and response_json(again) == member
    padded = web_push(1)
    padded["keys"] = {k: v + "=" * (-len(v) % 4) for k, v in padded["keys"].items()}
    assert response_json(join(api, {"web_push": padded})) == member
    other_auth = {**web_push(1)["keys"], "auth": base64.urlsafe_b64encode(b"a" * 16).decode()}
    guess = join(api, {"web_push": {"endpoint": web_push(1)["endpoint"], "keys": other_auth}})
    assert guess["statusCode"] == 409 and member["token"] not in guess["body"]
    assert members(api) == 222_001


def test_a_member_renews_its_keys_only_with_its_token(api: Api) -> None:
    seed(api)
    member = response_json(join(api, {"web_push": web_push(1)}))
    renewed = {"p256dh": p256_point(4242), "auth": base64.urlsafe_b64encode(b"n" * 16).decode().rstrip("=")}
    body = {"web_push": {"endpoint": web_push(1)["endpoint"], "keys": renewed}}
    assert join(api, body)["statusCode"] == 409
    stored = api.members().member(COMMUNITY, member["member_id"])
    assert stored.web_push.keys.p256dh == web_push(1)["keys"]["p256dh"]
    assert join(api, body, token=member["token"])["statusCode"] == 200
    stored = api.members().member(COMMUNITY, member["member_id"])
    assert stored.web_push.keys.p256dh == renewed["p256dh"]


# ----------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("https://169.254.169.254/latest/meta-data/", "IP address"),
        ("https://[fd00::1]/push", "IP address"),
        ("https://[::ffff:127.0.0.1]/push", "IP address"),
        ("https://10.0.0.5/push", "IP address"),
        ("https://localhost/push", "not a public host name"),
        ("https://metadata.google.internal/computeMetadata/v1/", "not a public host name"),
        ("https://metadata/x", "not a public host name"),
        ("https://0x7f000001.1/x", "another notation"),
        ("https://fcm.googleapis.com:8443/fcm/send/x", "port 8443 is not allowed"),
        ("https://fcm.googleapis.com:22/fcm/send/x", "port 22 is not allowed"),
        ("https://user:pw@fcm.googleapis.com/fcm/send/x", "user name or password"),
        ("http://fcm.googleapis.com/fcm/send/x", "https"),
        ("http://127.0.0.1:8099/push/1", "https"),
        ("https://fcm.googleapis.com/fcm/send/\u00e9t\u00e9", "ASCII"),
    ],
)
def test_push_endpoints_must_be_https_on_a_public_host(api: Api, endpoint: str, problem: str) -> None:
    seed(api)
    response = join(api, {"web_push": {**web_push(1), "endpoint": endpoint}})
    assert response["statusCode"] == 422, response
    detail = response_json(response)["detail"]
    assert [d["loc"] for d in detail] == [["body", "web_push", "endpoint"]], detail
    assert problem in detail[0]["msg"], detail
    assert members(api) == 222_000


def resolving_to(addresses: list[str]) -> list[tuple[str, int]]:
    """The API's join-time DNS answering ``addresses`` (the resolver is DNS's, not Herald's)."""
    from herald.api import app as api_app
    from herald.api.settings import ApiSettings

    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return addresses

    def factory() -> Any:
        services = api_app.default_services(ApiSettings.from_env())
        services.membership.resolve = resolve
        return services

    api_app.configure(factory)
    return asked


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("10.0.0.5", "resolves to 10.0.0.5, a private address"),
        ("169.254.169.254", "resolves to 169.254.169.254, a link-local address"),
        ("127.0.0.1", "a loopback address"),
        ("fd00::1", "resolves to fd00::1, a private address"),
        ("::ffff:169.254.169.254", "link-local"),
    ],
)
def test_a_host_that_resolves_to_a_private_address_is_refused(api: Api, address: str, problem: str) -> None:
    seed(api)
    asked = resolving_to(["142.250.74.106", address])
    response = join(api, {"web_push": web_push(1)})
    assert response["statusCode"] == 422, response
    assert problem in response_json(response)["detail"][0]["msg"]
    assert asked == [("fcm.googleapis.com", 443)]
    resolving_to(["142.250.74.106"])
    assert join(api, {"web_push": web_push(1)})["statusCode"] == 201


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("keys", "field", "problem"),
    [
        ({"p256dh": base64.urlsafe_b64encode(b"\x04" + bytes(64)).decode(), "auth": AUTH}, "p256dh", "P-256"),
        (
            {"p256dh": base64.urlsafe_b64encode(b"\x04" + bytes(range(64))).decode(), "auth": AUTH},
            "p256dh",
            "P-256",
        ),
        ({"p256dh": p256_point(5), "auth": base64.urlsafe_b64encode(bytes(15)).decode()}, "auth", "16 bytes"),
        ({"p256dh": p256_point(5), "auth": base64.urlsafe_b64encode(bytes(17)).decode()}, "auth", "16 bytes"),
    ],
)
def test_keys_are_validated_as_keys(api: Api, keys: dict[str, str], field: str, problem: str) -> None:
    seed(api)
    response = join(api, {"web_push": {"endpoint": web_push(1)["endpoint"], "keys": keys}})
    assert response["statusCode"] == 422, response
    detail = response_json(response)["detail"]
    assert [d["loc"] for d in detail] == [["body", "web_push", "keys", field]], detail
    assert problem in detail[0]["msg"]


# ----------------------------------------------------------------------------- malformed bodies

VALID = json.dumps({"web_push": web_push(1)})


MALFORMED: list[tuple[str, str | bytes, bool]] = [
    ("deep nesting", '{"web_push": ' + "[" * 5_000 + "]" * 5_000 + "}", False),
    ("nesting just too deep", '{"web_push": ' + "[" * 40 + "]" * 40 + "}", False),
    ("deep objects", '{"languages": ' + '{"a":' * 2_000 + "1" + "}" * 2_000 + "}", False),
    ("non-UTF-8 bytes", b'{"web_push": {"endpoint": "https://fcm.googleapis.com/\xff\xfe"}}', False),
    ("non-UTF-8, base64-encoded", b'{"languages": ["\xc3\x28"]}', True),
    ("base64-encoded, not JSON", b"\x89PNG\r\n\x1a\n\x00\x00", True),
    ("a 5,000-digit number", '{"web_push": ' + VALID[13:-1] + ', "languages": [' + "9" * 5000 + "]}", False),
    ("a number beyond float", '{"languages": [1e400], "web_push": ' + VALID[13:-1] + "}", False),
    ("NaN", '{"languages": NaN}', False),
    ("an object for the endpoint", VALID.replace(f'"{web_push(1)["endpoint"]}"', '{"a": {"b": []}}'), False),
    ("a list for the keys", VALID.replace(VALID[VALID.index('{"p256dh"') : -2], "[1, 2, 3]"), False),
    ("a number for p256dh", VALID.replace(f'"{web_push(1)["keys"]["p256dh"]}"', "1234567890"), False),
    ("a lone surrogate", VALID.replace("sub-1", "sub-\\ud800"), False),
    ("a lone surrogate in a language", '{"languages": ["\\udfff"]}', False),
    ("a JSON string", '"hello"', False),
    ("null", "null", False),
    ("a list", "[1, 2]", False),
    ("truncated", VALID[:-3], False),
    ("duplicate keys, last one bad", VALID[:-1] + ', "web_push": 1}', False),
]


@pytest.mark.parametrize(("name", "body", "binary"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_4xx_with_the_reason(
    api: Api, name: str, body: str | bytes, binary: bool
) -> None:
    seed(api)
    member = response_json(join(api, {"web_push": web_push(2)}))
    for method, path in (
        ("POST", MEMBERS),
        ("PATCH", f"{MEMBERS}/{member['member_id']}"),
    ):
        event = rest_event(
            method,
            path,
            body=body,
            headers={"Content-Type": "application/json", **bearer(member["token"])},
            binary=binary,
        )
        response = api.handler.handler(event, LambdaContext())
        assert 400 <= response["statusCode"] < 500, (name, method, response)
        answer = response_json(response)
        assert answer, (name, method, response)
        reason = json.dumps(answer)
        assert "detail" in answer or "error" in answer, answer
        assert len(reason) < 4096, (name, len(reason))  # the reason, not an echo of a huge body
    assert members(api) == 222_001


def test_huge_query_numbers_are_422(api: Api) -> None:
    seed(api, [post(1)])
    for limit in ("9" * 5000, "1e400", "-0", "0x10"):
        response = api.call("GET", f"/communities/{COMMUNITY}/posts", query={"limit": limit})
        assert response["statusCode"] == 422, (limit, response)


# ----------------------------------------------------------------------------- response size


def test_long_posts_page_by_size_under_lambdas_limit(api: Api) -> None:
    # 24 posts of 150,000 characters that each take 6-7 bytes once escaped: about 1 MB apiece.
    posts = []
    for n in range(24):
        p = post(n)
        posts.append(p.model_copy(update={"text": "\u00e9\u0001" * 75_000, "excerpt": "long"}))
    seed(api, posts)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        response = api.call("GET", f"/communities/{COMMUNITY}/posts", query=query)
        assert response["statusCode"] == 200, response["body"][:500]
        # What Lambda measures: the proxy response, serialised.
        assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT, len(json.dumps(response))
        page = response_json(response)
        assert page["items"], page
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages > 1
    newest_first = sorted(posts, key=lambda p: p.created_at, reverse=True)
    assert seen == [p.id for p in newest_first]
