"""Scheduled posts on moto, on the fan-out rig's clock: the publisher's wake-ups follow edits of
``publish_at``, a post deleted before its time never appears nor pushes, and a wake-up or a stream
batch delivered twice pushes nobody twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.integration.fanout_rig import COMMUNITY, Rig, rig_fixture  # noqa: F401

START = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # the rig's clock


def _at(hours: float) -> str:
    return datetime.fromtimestamp(START.timestamp() + hours * 3600, UTC).isoformat().replace("+00:00", "Z")


def _site(rig: Rig, path: str) -> str | None:
    try:
        body = rig.s3.get_object(Bucket=rig.env["SITE_BUCKET"], Key=f"{COMMUNITY}/{path}")["Body"]
    except rig.s3.exceptions.NoSuchKey:
        return None
    return str(body.read().decode())


def _shown(rig: Rig, post_id: str) -> dict[str, bool]:
    feed = _site(rig, "feed.json")
    return {
        "page": _site(rig, f"posts/{post_id}/index.html") is not None,
        "index": f"posts/{post_id}/" in (_site(rig, "index.html") or ""),
        "feed": feed is not None and any(post_id in i["id"] for i in json.loads(feed)["items"]),
    }


HIDDEN = {"page": False, "index": False, "feed": False}
SHOWN = {"page": True, "index": True, "feed": True}


def _upload(rig: Rig, name: str, **body: Any) -> None:
    rig.upload(f"posts/{COMMUNITY}/{name}.json", json.dumps(body))


def test_an_edit_moving_publish_at_earlier_publishes_and_pushes_at_the_new_time(rig: Rig) -> None:
    member = rig.join()
    text = "The market moves to the square on Sunday."
    post_id = rig.post("market", text, publish_at=_at(3))
    rig.drain()
    _upload(rig, "market", text=text, publish_at=_at(1))
    rig.drain()
    assert _shown(rig, post_id) == HIDDEN and rig.received_by(member) == []
    rig.clock.advance(3600)
    rig.drain()
    assert _shown(rig, post_id) == SHOWN and rig.received_by(member) == [post_id]
    rig.clock.advance(2 * 3600)  # the first wake-up's time: it finds the post moved and stops
    rig.drain()
    assert rig.received_by(member) == [post_id] and rig.queued("SCHEDULE_QUEUE_URL") == 0


def test_an_edit_moving_publish_at_later_holds_page_and_push_until_then(rig: Rig) -> None:
    member = rig.join()
    text = "Registration opens at the town hall."
    post_id = rig.post("registration", text, publish_at=_at(1))
    rig.drain()
    _upload(rig, "registration", text=text, publish_at=_at(3))
    rig.drain()
    rig.clock.advance(3600)
    rig.drain()
    assert _shown(rig, post_id) == HIDDEN and rig.received_by(member) == []
    rig.clock.advance(2 * 3600 - 1)
    rig.drain()
    assert _shown(rig, post_id) == HIDDEN and rig.received_by(member) == []
    rig.clock.advance(1)
    rig.drain()
    assert _shown(rig, post_id) == SHOWN and rig.received_by(member) == [post_id]
    assert rig.queued("SCHEDULE_QUEUE_URL") == 0


def test_a_scheduled_post_deleted_before_its_time_gets_no_page_and_no_push(rig: Rig) -> None:
    member = rig.join()
    post_id = rig.post("gone", "A post taken back before it was due.", publish_at=_at(1))
    rig.drain()
    rig.s3.delete_object(Bucket=rig.bucket, Key=f"posts/{COMMUNITY}/gone.json")
    rig._drain_queue("INGEST_QUEUE_URL", rig.ingest)
    rig.clock.advance(3600)
    rig.drain()
    assert _shown(rig, post_id) == HIDDEN and rig.received_by(member) == []
    assert rig.queued("SCHEDULE_QUEUE_URL") == 0 and rig.queued("PLANNER_QUEUE_URL") == 0


def test_a_redelivered_wake_up_and_a_replayed_stream_push_nobody_twice(rig: Rig) -> None:
    members = [rig.join() for _ in range(3)]
    post_id = rig.post("twice", "The ferry timetable changes on Monday.", publish_at=_at(1))
    rig.drain()
    rig.clock.advance(3600)
    due = {"v": 1, "kind": "due", "community": COMMUNITY, "post_id": post_id,
           "publish_at": START.timestamp() + 3600}  # fmt: skip
    for _ in range(2):  # the wake-up delivered three times in all
        rig.sqs.send_message(QueueUrl=rig.env["SCHEDULE_QUEUE_URL"], MessageBody=json.dumps(due))
    rig.drain()
    rig._positions.clear()  # the whole stream once more: the release marker's record included
    rig.drain()
    assert all(rig.received_by(m) == [post_id] for m in members)
    assert rig.push.duplicates() == {}
    assert rig.stats(post_id) == {"targeted": 3, "sent": 3, "failed": 0, "pruned": 0, "deferred": 0}
    assert _shown(rig, post_id) == SHOWN


def test_a_scheduled_post_that_does_not_notify_still_appears_at_its_time(rig: Rig) -> None:
    member = rig.join()
    post_id = rig.post("quiet", "The library opens an hour later.", publish_at=_at(1), notify=False)
    rig.drain()
    assert _shown(rig, post_id) == HIDDEN
    rig.clock.advance(3600)
    rig.drain()
    assert _shown(rig, post_id) == SHOWN and rig.received_by(member) == []
