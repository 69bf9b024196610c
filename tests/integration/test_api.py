"""The API function, driven by the REST API (v1) proxy events API Gateway sends, on moto.

Resources come from template.yaml; the community and its posts are written through Herald's own
content store, as ingest writes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.content.models import CommunityProfile, Post
from herald.ingest.ports import Change
from tests.integration.api_events import response_headers, response_json
from tests.integration.conftest import Api
from tests.member_counts import settle_api

COMMUNITY = "safe-routes"


def p256_point(secret: int) -> str:
    """A browser-like ``p256dh``: the uncompressed public point of a P-256 key, base64url."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = ec.derive_private_key(secret, ec.SECP256R1()).public_key()
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


P256DH = p256_point(1234567)
AUTH = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()


def web_push(n: int | str, keys: tuple[str, str] = (P256DH, AUTH)) -> dict[str, Any]:
    return {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/sub-{n}",
        "keys": {"p256dh": keys[0], "auth": keys[1]},
    }


def post(
    n: int,
    *,
    pinned: bool = False,
    topics: list[str] | None = None,
    language: str = "en",
    countries: list[str] | None = None,
) -> Post:
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    text = f"Post number {n} about the crossing."
    return Post(
        id=hashlib.sha256(f"{n}".encode()).hexdigest()[:20],
        community=COMMUNITY,
        key=f"posts/{COMMUNITY}/{n}.txt",
        title=f"Post {n}",
        text=text,
        excerpt=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        pinned=pinned,
        topics=topics or [],
        language=language,
        countries=countries or [],
        created_at=at,
        updated_at=at,
    )


def seed(api: Api, posts: list[Post] | None = None, baseline: int = 222_000) -> None:
    store = api.content()
    profile = CommunityProfile(
        name="Safe Routes",
        description="Help on the move.",
        verified=True,
        members=baseline,
        created_year=2020,
    )
    store.commit(Change(profile=(COMMUNITY, profile)))
    for start in range(0, len(posts or []), 10):
        store.commit(Change(create_posts=(posts or [])[start : start + 10]))


def settled_members(api: Api) -> int:
    """The community's member count once the counter has read the stream (a burst settled)."""
    settle_api(api)
    return int(response_json(api.call("GET", f"/communities/{COMMUNITY}"))["members"])


def join(
    api: Api, body: dict[str, Any], community: str = COMMUNITY, token: str | None = None
) -> dict[str, Any]:
    headers = bearer(token) if token else None
    return api.call("POST", f"/communities/{community}/members", body=body, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ----------------------------------------------------------------------------- community


def test_community_profile_counts_and_locale(api: Api) -> None:
    seed(api, [post(1), post(2)])
    response = api.call("GET", f"/communities/{COMMUNITY}")
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body == {
        "id": COMMUNITY,
        "name": "Safe Routes",
        "description": "Help on the move.",
        "verified": True,
        "members": 222_000,
        "members_display": "222K",
        "posts": 2,
        "created_year": 2020,
        "join_url": f"https://herald.example/{COMMUNITY}/join",
    }
    fr = response_json(
        api.call("GET", f"/communities/{COMMUNITY}", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    )
    assert fr["members_display"] == "222\xa0k"
    ar = response_json(api.call("GET", f"/communities/{COMMUNITY}", headers={"accept-language": "ar"}))
    assert ar["members_display"] == "222\xa0ألف"
    junk = response_json(api.call("GET", f"/communities/{COMMUNITY}", headers={"Accept-Language": "q=;;,"}))
    assert junk["members_display"] == "222K"


def test_unknown_community_is_404_everywhere(api: Api) -> None:
    seed(api)
    for method, path, body in [
        ("GET", "/communities/nowhere", None),
        ("GET", "/communities/nowhere/posts", None),
        ("GET", "/communities/nowhere/posts/abc", None),
        ("GET", "/communities/nowhere/join", None),
        ("POST", "/communities/nowhere/members", {"web_push": web_push(1)}),
        ("DELETE", "/communities/nowhere/members/" + "0" * 32, None),
        ("GET", "/communities/has%20space", None),
    ]:
        response = api.call(method, path, body=body, headers=bearer("x"))
        assert response["statusCode"] == 404, (method, path, response)
        assert response_json(response)["error"] == "community not found"
    assert response_json(api.call("GET", "/communities/nowhere")) == {
        "error": "community not found",
        "community": "nowhere",
    }


# ----------------------------------------------------------------------------- posts


def test_posts_pinned_first_then_newest_with_cursor_pages(api: Api) -> None:
    posts = [post(n, pinned=(n == 3)) for n in range(1, 26)]
    seed(api, posts)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        response = api.call("GET", f"/communities/{COMMUNITY}/posts", query=query)
        assert response["statusCode"] == 200, response
        page = response_json(response)
        pages += 1
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 10
    order = [posts[2], *sorted((p for p in posts if not p.pinned), key=lambda p: p.created_at, reverse=True)]
    assert seen == [p.id for p in order]
    assert pages == 3
    one = response_json(api.call("GET", f"/communities/{COMMUNITY}/posts/{posts[4].id}"))
    assert one["id"] == posts[4].id and one["title"] == "Post 5" and "key" not in one
    missing = api.call("GET", f"/communities/{COMMUNITY}/posts/ffffffffffffffffffff")
    assert missing["statusCode"] == 404 and response_json(missing)["error"] == "post not found"


def test_post_filters_fill_pages(api: Api) -> None:
    posts = [
        post(
            n,
            topics=["health"] if n % 5 == 0 else ["jobs"],
            language="fr" if n % 2 else "en",
            countries=["LB"] if n % 3 == 0 else [],
        )
        for n in range(1, 41)
    ]
    seed(api, posts)
    page = response_json(
        api.call("GET", f"/communities/{COMMUNITY}/posts", query={"topic": "health", "limit": "5"})
    )
    assert [p["id"] for p in page["items"]] == [
        p.id
        for p in sorted((p for p in posts if "health" in p.topics), key=lambda p: p.created_at, reverse=True)
    ][:5]
    rest = response_json(
        api.call(
            "GET",
            f"/communities/{COMMUNITY}/posts",
            query={"topic": "health", "limit": "5", "cursor": page["next_cursor"]},
        )
    )
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    both = response_json(
        api.call(
            "GET",
            f"/communities/{COMMUNITY}/posts",
            query={"country": "LB", "language": "fr", "limit": "100"},
        )
    )
    assert {p["id"] for p in both["items"]} == {
        p.id for p in posts if "LB" in p.countries and p.language == "fr"
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        (
            {
                "cursor": base64.urlsafe_b64encode(
                    b'{"pk":"C#other","sk":"POST#1","gsi1pk":"FEED#other","gsi1sk":"x"}'
                ).decode()
            },
            "cursor",
        ),
        ({"country": "lebanon"}, "country"),
    ],
)
def test_bad_post_queries_are_422_naming_the_field(api: Api, query: dict[str, str], field: str) -> None:
    seed(api, [post(1)])
    response = api.call("GET", f"/communities/{COMMUNITY}/posts", query=query)
    assert response["statusCode"] == 422, response
    detail = response_json(response)["detail"]
    assert any(d["loc"][-1] == field or d["field"] == field for d in detail), detail


# ----------------------------------------------------------------------------- joining


def test_join_repeat_and_leave_keep_the_count_exact(api: Api) -> None:
    seed(api)
    first = join(api, {"web_push": web_push(1), "languages": ["en", "ar"], "topics": ["health"]})
    assert first["statusCode"] == 201, first
    member = response_json(first)
    assert set(member) == {"member_id", "token"} and len(member["member_id"]) == 32

    # A repeat join presenting the member's token (a retry, a reload): the same member and token.
    again = join(api, {"web_push": web_push(1)}, token=member["token"])
    assert again["statusCode"] == 200
    assert response_json(again) == member
    # New keys for the same endpoint, from the member: the same member, keys updated, counted once.
    new_keys = (p256_point(7654321), AUTH)
    renewed = join(api, {"web_push": web_push(1, new_keys)}, token=member["token"])
    assert renewed["statusCode"] == 200 and response_json(renewed) == member
    stored = api.members().member(COMMUNITY, member["member_id"])
    assert stored.web_push.keys.p256dh == new_keys[0]
    assert stored.token_hash == hashlib.sha256(member["token"].encode()).hexdigest()
    assert member["token"] not in json.dumps(stored.model_dump(mode="json"))
    assert stored.preferences.languages == ["en", "ar"]

    second = response_json(join(api, {"web_push": web_push(2)}))
    assert settled_members(api) == 222_002

    left = api.call(
        "DELETE", f"/communities/{COMMUNITY}/members/{member['member_id']}", headers=bearer(member["token"])
    )
    assert left["statusCode"] == 204 and not left.get("body")
    # Leaving again with the right token: answered the same, counted once.
    again = api.call(
        "DELETE", f"/communities/{COMMUNITY}/members/{member['member_id']}", headers=bearer(member["token"])
    )
    assert again["statusCode"] == 204
    assert settled_members(api) == 222_001
    assert api.members().member(COMMUNITY, member["member_id"]) is None
    # After leaving, the same subscription joins as a new member.
    back = join(api, {"web_push": web_push(1)})
    assert back["statusCode"] == 201 and response_json(back)["member_id"] != member["member_id"]
    assert settled_members(api) == 222_002
    assert second["member_id"] != member["member_id"]


def test_tokens_401_403_without_revealing_membership(api: Api) -> None:
    seed(api)
    member = response_json(join(api, {"web_push": web_push(1)}))
    path = f"/communities/{COMMUNITY}/members/{member['member_id']}"
    unknown = f"/communities/{COMMUNITY}/members/{'a' * 32}"
    for method, body in (("DELETE", None), ("PATCH", {"muted": True})):
        missing = api.call(method, path, body=body)
        assert missing["statusCode"] == 401
        assert response_headers(missing)["www-authenticate"].startswith("Bearer")
        assert api.call(method, path, body=body, headers={"Authorization": "Basic abc"})["statusCode"] == 401
        wrong = api.call(method, path, body=body, headers=bearer(member["token"][:-2] + "xx"))
        nobody = api.call(method, unknown, body=body, headers=bearer(member["token"]))
        weird = api.call(
            method, f"/communities/{COMMUNITY}/members/not-an-id", body=body, headers=bearer("x")
        )
        assert wrong["statusCode"] == nobody["statusCode"] == weird["statusCode"] == 403
        assert response_json(wrong) == response_json(nobody) == response_json(weird) == {"error": "forbidden"}
    assert settled_members(api) == 222_001


def test_preferences(api: Api) -> None:
    seed(api)
    member = response_json(join(api, {"web_push": web_push(1), "languages": ["fr"]}))
    path = f"/communities/{COMMUNITY}/members/{member['member_id']}"
    quiet = {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"}
    response = api.call(
        "PATCH",
        path,
        body={"topics": ["health", "health"], "muted": True, "quiet_hours": quiet},
        headers=bearer(member["token"]),
    )
    assert response["statusCode"] == 200, response
    assert response_json(response) == {
        "languages": ["fr"],
        "topics": ["health"],
        "muted": True,
        "quiet_hours": quiet,
    }
    cleared = response_json(
        api.call(
            "PATCH", path, body={"quiet_hours": None, "languages": ["en"]}, headers=bearer(member["token"])
        )
    )
    assert cleared == {"languages": ["en"], "topics": ["health"], "muted": True, "quiet_hours": None}
    for body, field in [
        ({"quiet_hours": {**quiet, "timezone": "Mars/Olympus"}}, "timezone"),
        ({"quiet_hours": {**quiet, "timezone": "../../etc/passwd"}}, "timezone"),
        ({"quiet_hours": {**quiet, "end": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": {**quiet, "start": "24:00"}}, "start"),
        ({"languages": ["english"]}, "languages"),
        ({"languages": ["xx"]}, "languages"),
        ({"topics": ["not-a-topic"]}, "topics"),
        ({"muted": "sometimes"}, "muted"),
        ({"colour": "blue"}, "colour"),
    ]:
        bad = api.call("PATCH", path, body=body, headers=bearer(member["token"]))
        assert bad["statusCode"] == 422, (body, bad)
        detail = response_json(bad)["detail"]
        assert any(field in d["loc"] for d in detail), (body, detail)
    api.call("DELETE", path, headers=bearer(member["token"]))
    gone = api.call("PATCH", path, body={"muted": False}, headers=bearer(member["token"]))
    assert gone["statusCode"] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"languages": ["en"]}, "body"),
        ({"web_push": {**web_push(1), "endpoint": "ftp://push.example/x"}}, "endpoint"),
        ({"web_push": {**web_push(1), "endpoint": "http://push.example/x"}}, "endpoint"),
        ({"web_push": {**web_push(1), "endpoint": "http://127.0.0.1:9/x"}}, "endpoint"),
        ({"web_push": {**web_push(1), "keys": {"p256dh": P256DH[:-4], "auth": AUTH}}}, "p256dh"),
        ({"web_push": {**web_push(1), "keys": {"p256dh": "A" + P256DH[1:], "auth": AUTH}}}, "p256dh"),
        ({"web_push": {**web_push(1), "keys": {"p256dh": P256DH, "auth": AUTH + "AAAA"}}}, "auth"),
        ({"web_push": {**web_push(1), "keys": {"p256dh": P256DH, "auth": "!!!!!!!!!!!!!!!!!!!!!!"}}}, "auth"),
        ({"web_push": web_push(1), "languages": ["eng"]}, "languages"),
        ({"web_push": web_push(1), "topics": ["astrology"]}, "topics"),
        ({"device": {"platform": "blackberry", "token": "a" * 64}}, "platform"),
        ({"device": {"platform": "fcm", "token": "has spaces in it"}}, "token"),
    ],
)
def test_bad_joins_are_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    seed(api)
    response = join(api, body)
    assert response["statusCode"] == 422, response
    detail = response_json(response)["detail"]
    assert any(field in d["loc"] for d in detail), detail
    assert all(d["msg"] for d in detail)


def test_body_limits_and_bad_json(api: Api) -> None:
    seed(api)
    big = {"web_push": web_push(1), "languages": ["en"], "pad": "x" * 17_000}
    response = join(api, big)
    assert response["statusCode"] == 413
    assert response_json(response)["max_bytes"] == 16 * 1024
    not_json = api.call(
        "POST",
        f"/communities/{COMMUNITY}/members",
        body="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json["statusCode"] == 422
    form = api.call(
        "POST",
        f"/communities/{COMMUNITY}/members",
        body="a=b",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert form["statusCode"] == 415


def test_loopback_push_endpoints_only_when_allowed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.api import app as api_app

    seed(api)
    body = {"web_push": {**web_push(1), "endpoint": "http://127.0.0.1:8099/push/1"}}
    assert join(api, body)["statusCode"] == 422
    monkeypatch.setenv("ALLOW_LOOPBACK_PUSH", "true")
    api_app.configure(None)
    assert join(api, body)["statusCode"] == 201
    assert join(api, {"web_push": {**web_push(2), "endpoint": "http://push.example/x"}})["statusCode"] == 422


def test_device_join_registers_an_sns_platform_endpoint(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.api import app as api_app

    seed(api)
    token = "fcm-token:" + "A1b2" * 30
    first = join(api, {"device": {"platform": "fcm", "token": token}, "topics": ["health"]})
    assert first["statusCode"] == 201, first
    member = response_json(first)
    stored = api.members().member(COMMUNITY, member["member_id"])
    endpoints = api.sns.list_endpoints_by_platform_application(PlatformApplicationArn=api.fcm_arn)[
        "Endpoints"
    ]
    assert [e["EndpointArn"] for e in endpoints] == [stored.endpoint_arn]
    assert endpoints[0]["Attributes"]["Token"] == token
    again = join(api, {"device": {"platform": "fcm", "token": token}}, token=member["token"])
    assert again["statusCode"] == 200 and response_json(again) == member
    # A web push subscription joined with the same device: the same member, now reachable both ways.
    both = join(
        api, {"device": {"platform": "fcm", "token": token}, "web_push": web_push(9)}, token=member["token"]
    )
    assert both["statusCode"] == 200 and response_json(both) == member
    assert join(api, {"web_push": web_push(9)}, token=member["token"])["statusCode"] == 200
    assert join(api, {"web_push": web_push(9)})["statusCode"] == 200  # the same keys: its own retry
    assert join(api, {"device": {"platform": "fcm", "token": token}})["statusCode"] == 409  # no token
    assert settled_members(api) == 222_001
    monkeypatch.setenv("APNS_PLATFORM_APPLICATION_ARN", "")
    api_app.configure(None)
    apns = join(api, {"device": {"platform": "apns", "token": "ab" * 32}})
    assert apns["statusCode"] == 422
    assert response_json(apns)["detail"][0]["loc"] == ["body", "device", "platform"]
    assert "mobile push for apns is not configured" in response_json(apns)["detail"][0]["msg"]


# ----------------------------------------------------------------------------- join link, docs, CORS


def test_join_link_and_qr_codes(api: Api) -> None:
    seed(api)
    response = api.call("GET", f"/communities/{COMMUNITY}/join")
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["join_url"] == f"https://herald.example/{COMMUNITY}/join"
    assert body["qr_svg"].startswith("<?xml") and "<svg" in body["qr_svg"]
    assert body["qr_png"].startswith("data:image/png;base64,")
    svg = api.call("GET", f"/communities/{COMMUNITY}/join", query={"format": "svg"})
    assert response_headers(svg)["content-type"] == "image/svg+xml" and "<svg" in svg["body"]
    png = api.call("GET", f"/communities/{COMMUNITY}/join", query={"format": "png"})
    assert response_headers(png)["content-type"] == "image/png" and png["isBase64Encoded"] is True
    assert base64.b64decode(png["body"]).startswith(b"\x89PNG\r\n\x1a\n")
    bad = api.call("GET", f"/communities/{COMMUNITY}/join", query={"format": "gif"})
    assert bad["statusCode"] == 422


def test_openapi_docs_and_cors(api: Api) -> None:
    seed(api)
    document = response_json(api.call("GET", "/openapi.json"))
    assert document["openapi"].startswith("3.")
    assert "/communities/{id}/members/{member_id}" in document["paths"]
    docs = api.call("GET", "/docs")
    assert docs["statusCode"] == 200 and "swagger" in docs["body"].lower()
    cors = api.call("GET", f"/communities/{COMMUNITY}", headers={"Origin": "https://herald.example"})
    assert response_headers(cors)["access-control-allow-origin"] == "https://herald.example"
    other = api.call("GET", f"/communities/{COMMUNITY}", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response_headers(other)


def test_simulated_members_through_the_handler(api: Api) -> None:
    import random

    from herald_tools.members_sim import simulate_members

    seed(api)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["httpMethod"] == "GET":  # the count is read once the joins and leaves are counted
            settle_api(api)
        return api.handler.handler(event, context)

    result = simulate_members(handler, COMMUNITY, 30, random.Random(5))
    assert result["joined"] == 30 and result["left"] == 3
    assert result["members"] == result["expected_members"] == 222_000 + 27
    assert set(result["statuses"]) <= {200, 201}


def test_an_id_no_upload_can_create_is_an_unknown_community(api: Api) -> None:
    # Communities exist only through uploads: an id outside the upload layout's pattern (capitals,
    # dots, underscores, over 64 characters) is answered as an unknown community, not as a bad one.
    seed(api)
    for community in ("Safe-Routes", "safe.routes", "safe_routes", "-safe", "a" * 65, "a" * 300):
        for method, path in [
            ("GET", f"/communities/{community}"),
            ("GET", f"/communities/{community}/join"),
            ("POST", f"/communities/{community}/members"),
        ]:
            body = {"web_push": web_push(1)} if method == "POST" else None
            response = api.call(method, path, body=body)
            assert response["statusCode"] == 404, (method, path, response)
            assert response_json(response) == {"error": "community not found", "community": community}
    assert settled_members(api) == 222_000


def test_a_burst_of_joins_reads_the_communitys_profile_once(api: Api) -> None:
    """Every join asks whether its community exists; one execution environment reads the profile
    (one item, one partition) once, not once per join."""
    from herald.core import aws

    seed(api)
    reads: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == api.content_table:
            reads.append(params["Key"]["pk"]["S"])

    client = aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb.GetItem", count)
    try:
        statuses = [join(api, {"web_push": web_push(i)})["statusCode"] for i in range(1, 21)]
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.GetItem", count)
    assert statuses == [201] * 20
    assert reads.count(f"C#{COMMUNITY}") <= 1
    # An unknown community is read every time (nothing is kept of what does not exist).
    assert join(api, {"web_push": web_push(30)}, community="nowhere")["statusCode"] == 404
    assert join(api, {"web_push": web_push(31)}, community="nowhere")["statusCode"] == 404
