"""Mobile pushes on moto: every message of a post carries its collapse id, so a repeat replaces the
notification shown instead of adding one (FCM ``android.collapse_key``, APNs ``apns-collapse-id``).

The fan-out runs as in the other fan-out tests (ingest, publisher, planner, sender on moto); the SNS
``Publish`` requests are read as the client sent them (moto keeps the message of a platform
endpoint, not its message attributes), the messages from moto's platform endpoints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from herald.fanout.channels.webpush import push_topic
from herald.members.rules import Device, Member, subscription_id
from tests.integration.fanout_rig import COMMUNITY, Rig, rig_fixture  # noqa: F401


def _apns_member(rig: Rig, token: str) -> Member:
    """A member with an iPhone: a device endpoint of an APNs platform application."""
    application = rig.sns.create_platform_application(
        Name="herald-test-apns",
        Platform="APNS",
        Attributes={"PlatformCredential": "k", "PlatformPrincipal": "p"},
    )["PlatformApplicationArn"]
    endpoint = rig.sns.create_platform_endpoint(PlatformApplicationArn=application, Token=token)
    endpoint_arn = endpoint["EndpointArn"]
    device = Device(platform="apns", token=token)
    now = datetime.now(UTC)
    member = Member(
        community=COMMUNITY,
        member_id="a" * 32,
        shard=0,
        token_hash="0" * 64,
        subscriptions=[subscription_id(device=device)],
        device=device,
        endpoint_arn=endpoint_arn,
        joined_at=now,
        updated_at=now,
    )
    rig.members().create(member)
    return member


def _record_publishes(rig: Rig) -> list[dict[str, Any]]:
    """Every SNS ``Publish`` the client sends from now on: its target, message and message attributes."""
    sent: list[dict[str, Any]] = []

    def on_send(request: Any, **_: Any) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        if body.lstrip().startswith("{"):  # the JSON protocol
            params = json.loads(body)
            attributes = {k: v["StringValue"] for k, v in (params.get("MessageAttributes") or {}).items()}
            sent.append(
                {"target": params["TargetArn"], "message": params["Message"], "attributes": attributes}
            )
            return
        form = {k: v[0] for k, v in parse_qs(body).items()}  # the query protocol
        names = [k for k in form if k.startswith("MessageAttributes.") and k.endswith(".Name")]
        entries = {k[: -len(".Name")] for k in names}
        attributes = {form[f"{e}.Name"]: form[f"{e}.Value.StringValue"] for e in entries}
        sent.append({"target": form["TargetArn"], "message": form["Message"], "attributes": attributes})

    rig.sns.meta.events.register("before-send.sns.Publish", on_send)
    return sent


def _post_of(publish: dict[str, Any]) -> str:
    return str(json.loads(json.loads(publish["message"])["APNS"])["post_id"])


def test_mobile_pushes_carry_the_posts_collapse_id(rig: Rig) -> None:
    android = rig.join(web=False, device="fcm-token-0001")
    iphone = _apns_member(rig, "apns-token-0001")
    sent = _record_publishes(rig)
    first = rig.post("a", "The water point moves to the school yard.")
    rig.drain()
    second = rig.post("b", "Vaccination day at the clinic on Tuesday.")
    rig.drain()

    for post_id in (first, second):
        assert push_topic(post_id) == post_id  # 20 hex digits: the id is its own topic and collapse id
        [publish] = [p for p in sent if p["target"] == iphone.endpoint_arn and _post_of(p) == post_id]
        # SNS's reserved attributes for APNs: sent as the apns-collapse-id and apns-push-type headers.
        assert publish["attributes"] == {
            "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": post_id,
            "AWS.SNS.MOBILE.APNS.PUSH_TYPE": "alert",
        }
        [publish] = [p for p in sent if p["target"] == android.endpoint_arn and _post_of(p) == post_id]
        assert publish["attributes"] == {}  # FCM's collapse key travels in the message itself

    # What moto's platform endpoints received: FCM's collapse key (and the APNs header for an iOS
    # app served through FCM), the APNs payload of the same post.
    messages = rig.mobile_messages(android)
    assert len(messages) == 2
    for message, post_id in zip(messages, (first, second), strict=True):
        fcm = json.loads(message["GCM"])["fcmV1Message"]["message"]
        assert fcm["android"]["collapse_key"] == post_id
        assert fcm["apns"]["headers"] == {"apns-collapse-id": post_id}
        assert fcm["android"]["notification"]["tag"] == f"post-{post_id}"
    messages = rig.mobile_messages(iphone)
    assert [json.loads(m["APNS"])["post_id"] for m in messages] == [first, second]
