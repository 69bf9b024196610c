"""Members over HTTP on the local cloud: the API Gateway emulation driving the real ApiFunction."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_tools.localcloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

EXPORT = (
    "Registration opens on Monday in Tripoli. #Registration\n\n"
    "Free legal advice every Thursday in Beirut.\n"
    "Scan QR code to join Community\nCedar Help\nNews for newcomers.\nVerified Community\n"
    "222K Members\nCreated In 2020\n"
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT).start(port=0, api_port=0) as running:
        s3 = running.client("s3")
        s3.put_object(
            Bucket=running.ready_info()["uploads_bucket"], Key="exports/cedar/page.txt", Body=EXPORT.encode()
        )
        running.wait_until_idle(timeout=120)
        yield running


def call(
    cloud: LocalCloud, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    assert cloud.api_url
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        cloud.api_url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def subscription(n: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = ec.derive_private_key(1000 + n, ec.SECP256R1()).public_key()
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {
        "endpoint": f"http://127.0.0.1:9/push/{n}",
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).decode().rstrip("="),
            "auth": base64.urlsafe_b64encode(bytes([n % 256]) * 16).decode().rstrip("="),
        },
    }


def members(cloud: LocalCloud, locale: str = "en") -> tuple[int, str]:
    """The community's member count once the member counter has read the stream."""
    cloud.wait_until_idle()
    status, body = call(cloud, "GET", "/communities/cedar", headers={"Accept-Language": locale})
    assert status == 200, body
    return body["members"], body["members_display"]


def test_join_again_update_and_leave_over_http(cloud: LocalCloud) -> None:
    assert members(cloud) == (222_000, "222K")
    status, joined = call(
        cloud, "POST", "/communities/cedar/members", {"web_push": subscription(1), "languages": ["en"]}
    )
    assert status == 201 and set(joined) >= {"member_id", "token"}
    assert members(cloud)[0] == 222_001
    # the same subscription again, with the member's token: the same member and token, no double count
    path = f"/communities/cedar/members/{joined['member_id']}"
    auth = {"Authorization": f"Bearer {joined['token']}"}
    status, again = call(cloud, "POST", "/communities/cedar/members", {"web_push": subscription(1)}, auth)
    assert status == 200 and again == joined
    # the same keys again, without the token: the browser's own retry, the same member
    status, retry = call(cloud, "POST", "/communities/cedar/members", {"web_push": subscription(1)})
    assert status == 200 and retry == joined
    # the endpoint with other keys and no token: nothing of the member is given out
    other = {**subscription(1), "keys": subscription(2)["keys"]}
    status, refused = call(cloud, "POST", "/communities/cedar/members", {"web_push": other})
    assert status == 409 and joined["token"] not in json.dumps(refused)
    assert members(cloud)[0] == 222_001
    status, prefs = call(
        cloud,
        "PATCH",
        path,
        {"muted": True, "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Asia/Beirut"}},
        auth,
    )
    assert status == 200 and prefs["muted"] is True
    # a wrong token and an unknown member look the same
    status_wrong, _ = call(cloud, "DELETE", path, headers={"Authorization": "Bearer nope"})
    status_unknown, _ = call(
        cloud,
        "DELETE",
        "/communities/cedar/members/m0000000000000000000000",
        headers={"Authorization": "Bearer nope"},
    )
    assert status_wrong == status_unknown == 403
    status_missing, _ = call(cloud, "DELETE", path)
    assert status_missing == 401
    status, _ = call(cloud, "DELETE", path, headers=auth)
    assert status == 204
    assert members(cloud)[0] == 222_000


def test_bad_body_names_the_field_over_http(cloud: LocalCloud) -> None:
    status, body = call(
        cloud,
        "POST",
        "/communities/cedar/members",
        {"web_push": {"endpoint": "ftp://x", "keys": {"p256dh": "x", "auth": "y"}}},
    )
    assert status == 422
    assert "web_push" in json.dumps(body)


def test_posts_and_join_link_over_http(cloud: LocalCloud) -> None:
    status, page = call(cloud, "GET", "/communities/cedar/posts?limit=1")
    assert status == 200 and len(page["items"]) == 1 and page["next_cursor"]
    status, rest = call(cloud, "GET", f"/communities/cedar/posts?limit=5&cursor={page['next_cursor']}")
    assert status == 200 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert page["items"][0]["id"] != rest["items"][0]["id"]  # the pages do not overlap
    status, join = call(cloud, "GET", "/communities/cedar/join")
    assert status == 200 and join["join_url"].endswith("/cedar/join") and join["qr_svg"].startswith("<")
    status, missing = call(cloud, "GET", "/communities/nowhere")
    assert status == 404 and missing["community"] == "nowhere"
