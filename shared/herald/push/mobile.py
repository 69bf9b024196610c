"""The SNS message of a mobile push: one ``Publish`` with ``MessageStructure=json`` to a platform endpoint.

``GCM`` carries Firebase Cloud Messaging's HTTP v1 shape (``{"fcmV1Message": {"message": …}}``): SNS
platform applications on FCM v1 credentials accept it, and it is the one FCM still serves. ``APNS`` and
``APNS_SANDBOX`` carry the same alert with ``thread-id`` (the community: iOS groups a community's posts)
and the post id beside ``aps``. ``default`` is the title, for any other platform.
"""

from __future__ import annotations

import json
from typing import Any

#: APNs refuses payloads over 4 KB; FCM over 4 KB of data. The excerpt is cut well below.
MAX_BODY_CHARS = 240


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def mobile_message(*, title: str, body: str, url: str, post_id: str, community: str) -> str:
    """The ``Message`` of an SNS ``Publish`` with ``MessageStructure="json"``."""
    body = _clip(body, MAX_BODY_CHARS)
    data = {"post_id": post_id, "community": community, "url": url}
    fcm: dict[str, Any] = {
        "fcmV1Message": {
            "message": {
                "notification": {"title": title, "body": body},
                "data": data,
                "android": {"collapse_key": post_id, "notification": {"tag": f"post-{post_id}"}},
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
