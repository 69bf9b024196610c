"""The SNS message of a mobile push: one collapse id per post, on every platform, within APNs' limit."""

from __future__ import annotations

import json

import pytest

from herald.fanout.channels.mobile import APNS_COLLAPSE_ID, collapse_id, mobile_attributes, mobile_message
from herald.fanout.channels.webpush import push_topic

IDS = [
    "f7f067c5474531d7b1a8",  # what Herald's post ids look like
    "a" * 32,
    "a" * 33,  # one over: hashed
    "post with spaces/and slashes",
    "مرحبا-بالعالم",
    "👋" * 40,
]


@pytest.mark.parametrize("post_id", IDS)
def test_the_collapse_id_is_the_web_push_topic_and_fits_apns(post_id: str) -> None:
    cid = collapse_id(post_id)
    assert cid == push_topic(post_id)  # the browser, FCM and APNs collapse on the same value
    assert 1 <= len(cid.encode()) <= 64  # apns-collapse-id: at most 64 bytes
    assert cid == collapse_id(post_id)  # the same post, the same id: a repeat replaces


def test_distinct_posts_get_distinct_collapse_ids() -> None:
    assert len({collapse_id(p) for p in IDS}) == len(IDS)


def test_every_platform_of_the_message_carries_it() -> None:
    post_id = "a" * 40
    cid = collapse_id(post_id)
    text = mobile_message(title="T", body="B", url="https://h.example/p", post_id=post_id, community="c")
    message = json.loads(text)
    fcm = json.loads(message["GCM"])["fcmV1Message"]["message"]
    assert fcm["android"]["collapse_key"] == cid and fcm["apns"]["headers"]["apns-collapse-id"] == cid
    assert json.loads(message["APNS"])["post_id"] == post_id  # the post itself, unhashed, for the app
    assert mobile_attributes("apns", post_id)[APNS_COLLAPSE_ID] == {"DataType": "String", "StringValue": cid}
    assert mobile_attributes("fcm", post_id) == {}
