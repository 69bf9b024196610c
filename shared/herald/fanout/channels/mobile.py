"""The SNS message of a mobile push: one ``Publish`` with ``MessageStructure=json`` to a platform endpoint.

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
from typing import Any

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
