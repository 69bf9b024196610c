"""The fan-out's pure rules: which stream records notify, preferences, quiet hours, job packing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from herald.content.adapters.dynamo_stream import content_change
from herald.fanout.rules import PostSummary, PushJob, Target, delay_for, notifying_post, pack, quiet_until
from herald.members.rules import Member, Preferences, QuietHours, WebPushSubscription

SITE = "https://herald.example"
P256DH = "BOrKq5bPmSnNNtE3MPCr-ER-bG0RADQzbzUFvwhyLQ5uOxSTvm1MB25r4P3wgmo54v0uj-y3pUw4qiWkE9M6ge4"


def _record(event: str = "INSERT", **image: object) -> dict[str, object]:
    """A content-table stream record of a post item, as Lambda delivers it."""
    keys = {"pk": image.pop("pk", {"S": "C#harbour"}), "sk": image.pop("sk", {"S": "POST#abc"})}
    base: dict[str, object] = {
        **keys,
        "type": {"S": "post"},
        "source": {"S": "post"},
        "notify": {"BOOL": True},
        "id": {"S": "abc"},
        "community": {"S": "harbour"},
        "key": {"S": "posts/harbour/abc.txt"},
        "title": {"S": "T"},
        "text": {"S": "T. E"},
        "excerpt": {"S": "E"},
        "topics": {"L": [{"S": "health"}]},
        "content_hash": {"S": "0" * 64},
        "created_at": {"S": "2025-06-02T12:00:00+00:00"},
        "updated_at": {"S": "2025-06-02T12:00:00+00:00"},
    }
    base.update(image)
    images = {"OldImage": base} if event == "REMOVE" else {"NewImage": base}
    if event == "MODIFY":
        images["OldImage"] = base
    return {"eventID": "1", "eventName": event, "dynamodb": {"Keys": keys, **images}}


def notifying(record: dict[str, object]) -> PostSummary | None:
    """What the fan-out rule says of a stream record, once the stream adapter has typed it."""
    change = content_change(record)
    return None if change is None else notifying_post(change, SITE)


def test_only_inserted_editor_posts_that_notify() -> None:
    post = notifying(_record())
    assert post is not None and post.topics == ("health",)
    assert post.url == "https://herald.example/harbour/posts/abc/"
    assert notifying(_record("MODIFY")) is None
    assert notifying(_record(source={"S": "export"})) is None
    assert notifying(_record(notify={"BOOL": False})) is None
    assert notifying(_record(type={"S": "claim"}, sk={"S": "HASH#x"})) is None
    scheduled = notifying(_record(publish_at={"S": "2030-01-01T00:00:00+00:00"}))
    assert scheduled is not None and scheduled.publish_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("start", "end", "zone", "utc", "until"),
    [
        ("22:00", "07:00", "Europe/Paris", "2025-06-02T21:30", "2025-06-03T05:00"),  # 23:30 CEST
        ("22:00", "07:00", "Europe/Paris", "2025-06-02T10:00", None),
        ("13:00", "15:00", "UTC", "2025-06-02T13:00", "2025-06-02T15:00"),
        ("13:00", "15:00", "UTC", "2025-06-02T15:00", None),
        ("20:00", "07:00", "Asia/Tokyo", "2025-06-02T12:00", "2025-06-02T22:00"),  # 21:00 JST
    ],
)
def test_quiet_hours_end(start: str, end: str, zone: str, utc: str, until: str | None) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()
    got = quiet_until(QuietHours(start=start, end=end, timezone=zone), now)
    want = None if until is None else datetime.fromisoformat(until).replace(tzinfo=UTC).timestamp()
    assert got == want


def test_targets_and_packing() -> None:
    from herald.fanout.rules import targets

    now = datetime(2025, 6, 2, 12, tzinfo=UTC)
    web = WebPushSubscription.model_validate(
        {"endpoint": "https://push.example/x", "keys": {"p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}
    )
    post = PostSummary("harbour", "abc", "T", "E", "u", language="en", topics=("health",))

    def member(**prefs: object) -> Member:
        return Member(
            community="harbour",
            member_id="0" * 32,
            shard=0,
            token_hash="0" * 64,
            subscriptions=["s"],
            web_push=web,
            preferences=Preferences.model_validate(prefs),
            joined_at=now,
            updated_at=now,
        )

    at = now.timestamp()
    assert len(targets(member(), post, at)) == 1
    assert targets(member(muted=True), post, at) == []
    assert targets(member(languages=["fr"]), post, at) == []
    assert targets(member(topics=["education"]), post, at) == []
    assert len(targets(member(languages=["en"], topics=["health", "education"]), post, at)) == 1
    [later] = targets(member(quiet_hours={"start": "11:00", "end": "13:00", "timezone": "UTC"}), post, at)
    assert later.not_before == at + 3600

    found = [
        Target(member_id=f"m{i}", channel="web", subscription="s", not_before=None if i % 3 else at + 60)
        for i in range(250)
    ]
    jobs = pack(post, found, members_per_job=100)
    assert sum(len(j.targets) for j in jobs) == 250 and all(len(j.targets) <= 100 for j in jobs)
    assert {j.not_before for j in jobs} == {None, at + 60}
    assert PushJob.from_dict(jobs[0].as_dict()) == jobs[0]
    assert delay_for(at + 5000, at) == 900 and delay_for(at + 10, at) == 10 and delay_for(at, at) == 0


def test_the_upload_correlation_id_travels_with_the_push_jobs() -> None:
    post = notifying(_record(correlation_id={"S": "s3-REQ123"}))
    assert post is not None and post.correlation_id == "s3-REQ123"
    job = PushJob(job_id="j", post=post, targets=())
    assert PushJob.from_dict(job.as_dict()).post.correlation_id == "s3-REQ123"
