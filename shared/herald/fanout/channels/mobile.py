"""The SNS mobile channel (:class:`MobileChannel`): a member's device, pushed through its SNS platform
endpoint, and the message of that push: one ``Publish`` with ``MessageStructure=json``.

``GCM`` carries Firebase Cloud Messaging's HTTP v1 shape (``{"fcmV1Message": {"message": …}}``): SNS
platform applications on FCM v1 credentials accept it, and it is the one FCM still serves. ``APNS`` and
``APNS_SANDBOX`` carry the same alert with ``thread-id`` (the community: iOS groups a community's posts)
and the post id beside ``aps``. ``default`` is the title, for any other platform.

**A repeat replaces, it does not add.** Every message of a post carries one collapse id derived from
the post id (:func:`collapse_id`, the same value as the Web Push ``Topic``): FCM's
``android.collapse_key`` (and ``apns-collapse-id`` in the FCM message's ``apns.headers``, for an iOS
app served through FCM), and for an APNs platform application the SNS message attribute
``AWS.SNS.MOBILE.APNS.COLLAPSE_ID`` (:func:`mobile_attributes`), which SNS sends as the
``apns-collapse-id`` header. A post pushed twice (a sender that died between its push and its mark)
shows one notification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from herald.fanout.delivery import DeliveryResult, Outcome
from herald.fanout.jobs import PostSummary, Target
from herald.members.rules import Member, subscription_id

if TYPE_CHECKING:
    from herald.fanout.channels import Subscriptions

#: The target kinds of this channel: a device's platform (``c`` on the wire).
KINDS: tuple[str, ...] = ("fcm", "apns")
#: The metrics label of every mobile push (SNS stands between Herald and FCM or APNs).
SERVICE = "sns"

#: APNs refuses payloads over 4 KB; FCM over 4 KB of data. The excerpt is cut well below.
MAX_BODY_CHARS = 240


_COLLAPSE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

#: The SNS message attributes of an APNs push (SNS's reserved names for mobile push).
APNS_COLLAPSE_ID = "AWS.SNS.MOBILE.APNS.COLLAPSE_ID"
APNS_PUSH_TYPE = "AWS.SNS.MOBILE.APNS.PUSH_TYPE"


def collapse_id(post_id: str) -> str:
    """The collapse id of a post's pushes: the post id when it is at most 32 base64url characters
    (Herald's 20 hex digits are), else the first 32 characters of the base64url SHA-256 of it. The
    same rule as the Web Push ``Topic``, well inside APNs' 64 bytes for ``apns-collapse-id``."""
    if _COLLAPSE_ID.fullmatch(post_id):
        return post_id
    digest = hashlib.sha256(post_id.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")[:32]


def mobile_attributes(platform: str, post_id: str) -> dict[str, dict[str, str]]:
    """The ``MessageAttributes`` of the ``Publish``: for APNs, the collapse id and the push type
    (``alert``: the message shows a notification); none for FCM, whose message carries its own."""
    if platform != "apns":
        return {}
    return {
        APNS_COLLAPSE_ID: {"DataType": "String", "StringValue": collapse_id(post_id)},
        APNS_PUSH_TYPE: {"DataType": "String", "StringValue": "alert"},
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def mobile_message(*, title: str, body: str, url: str, post_id: str, community: str) -> str:
    """The ``Message`` of an SNS ``Publish`` with ``MessageStructure="json"``."""
    body = _clip(body, MAX_BODY_CHARS)
    data = {"post_id": post_id, "community": community, "url": url}
    collapse = collapse_id(post_id)
    fcm: dict[str, Any] = {
        "fcmV1Message": {
            "message": {
                "notification": {"title": title, "body": body},
                "data": data,
                "android": {"collapse_key": collapse, "notification": {"tag": f"post-{post_id}"}},
                "apns": {"headers": {"apns-collapse-id": collapse}},
            }
        }
    }
    apns = {
        "aps": {"alert": {"title": title, "body": body}, "thread-id": community},
        "post_id": post_id,
        "url": url,
    }
    encoded_apns = json.dumps(apns, ensure_ascii=False)
    return json.dumps(
        {
            "default": title,
            "GCM": json.dumps(fcm, ensure_ascii=False),
            "APNS": encoded_apns,
            "APNS_SANDBOX": encoded_apns,
        },
        ensure_ascii=False,
    )


# ----------------------------------------------------------------------------- the channel


class MobilePusher(Protocol):
    """Publishes one post to one platform endpoint (``sns_mobile.SnsMobilePusher``)."""

    def publish(self, endpoint_arn: str, platform: str, post: PostSummary) -> DeliveryResult: ...


@dataclass
class MobileChannel:
    """Implements :class:`herald.fanout.channels.Channel` for the apps: a member's device, by its
    platform (``fcm``, ``apns``), pushed through its SNS platform endpoint (the target's ``address``).
    ``pusher`` gives the publisher (called on each push: make it once); ``bound_s``: the longest its
    ``Publish`` may take. :func:`herald.fanout.channels.sns_mobile.channel` makes it on SNS."""

    pusher: Callable[[], MobilePusher]
    bound_s: float
    kinds: tuple[str, ...] = KINDS

    def targets(self, member: Member, post: PostSummary, not_before: float | None) -> list[Target]:
        if member.device is None or not member.endpoint_arn:
            return []
        # The member was validated as it was read: its target is not validated again.
        return [
            Target.trusted(
                member.member_id,
                member.device.platform,
                subscription_id(device=member.device),
                address=member.endpoint_arn,
                not_before=not_before,
            )
        ]

    def message(self, post: PostSummary) -> None:
        """Nothing made ahead: each ``Publish`` builds its message (its attributes depend on the platform)."""
        return None

    def send(self, target: Target, post: PostSummary, message: Any) -> DeliveryResult:
        if not target.address:
            return DeliveryResult(Outcome.PRUNE, detail="no device endpoint")
        return self.pusher().publish(target.address, target.channel, post)

    def service(self, target: Target) -> str:
        return SERVICE

    def prune(self, community: str, target: Target, members: Subscriptions) -> bool:
        return members.prune_subscription(community, target.member_id, target.subscription)
