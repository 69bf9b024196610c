"""The fan-out on moto: the planner fed the content table's stream and its queue, the sender fed push
jobs, both with the event JSON Lambda sends, pushing to a loopback push service that checks and decrypts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from herald.members.rules import subscription_id
from tests.integration.conftest import REGION
from tests.integration.fanout_rig import COMMUNITY, Rig, by_member, rig_fixture  # noqa: F401
from tests.member_counts import StreamCounter

EXPORT = (
    "Clinic open on Saturday from 9.\n\n"
    "Free legal advice at the harbour office every Tuesday.\n"
    "Scan QR code to join Community\nHarbour\nHelp on the move.\n222K Members\nCreated In 2020\n"
    "Scan QR code to join Community\n"
)


def test_a_new_post_reaches_every_member_once_by_web_push_and_mobile_push(rig: Rig) -> None:
    members = [rig.join() for _ in range(6)] + [
        rig.join(device="fcm-token-0001"),
        rig.join(web=False, device="token-0002"),
    ]
    post_id = rig.post("welcome", "Welcome to the harbour line: the clinic opens at 9 on Saturday.")
    rig.drain()

    for member in members:
        if member.web_push is not None:
            assert rig.received_by(member) == [post_id]
        if member.device is not None:
            [message] = rig.mobile_messages(member)
            gcm = json.loads(message["GCM"])["fcmV1Message"]["message"]
            assert gcm["data"]["post_id"] == post_id and gcm["notification"]["title"].startswith("Welcome")
            apns = json.loads(message["APNS"])
            assert apns["aps"]["thread-id"] == COMMUNITY and apns["post_id"] == post_id
            assert json.loads(message["APNS_SANDBOX"]) == apns
    assert rig.push.duplicates() == {}
    [delivery] = rig.push.received(rig.sid(members[0]))
    assert delivery.headers["Topic"] == post_id and delivery.headers["Urgency"] == "normal"
    assert int(delivery.headers["TTL"]) == 86400
    assert delivery.json["url"] == f"https://herald.example/{COMMUNITY}/posts/{post_id}/"
    assert delivery.json["tag"] == f"post-{post_id}" and delivery.json["community"] == COMMUNITY
    assert rig.stats(post_id) == {"targeted": 9, "sent": 9, "failed": 0, "pruned": 0, "deferred": 0}

    # The same stream records again (a retried batch), and again the whole drain: nothing more.
    rig.drain()
    assert len(rig.push.received()) == 7 and rig.push.duplicates() == {}


def test_only_new_notifying_editor_posts_push(rig: Rig) -> None:
    member = rig.join()
    first = rig.post("a", "The clinic opens at 9 on Saturday.")
    rig.drain()
    rig.upload(
        f"posts/{COMMUNITY}/a.json", json.dumps({"text": "The clinic opens at 10 on Saturday."})
    )  # edit
    rig.post("quiet", "A post that does not notify anyone at all.", notify=False)
    rig.upload(f"posts/{COMMUNITY}/copy.json", json.dumps({"text": "The clinic opens at 10 on Saturday."}))
    rig.upload(f"posts/{COMMUNITY}/broken.json", "{not json")  # rejected
    rig.upload(f"exports/{COMMUNITY}/page.txt", EXPORT)  # imported posts never notify
    rig.s3.delete_object(Bucket=rig.bucket, Key=f"posts/{COMMUNITY}/a.json")
    rig._drain_queue("INGEST_QUEUE_URL", rig.ingest)
    rig.drain()
    assert rig.received_by(member) == [first]
    assert rig.queued("PUSH_JOB_QUEUE_URL") == 0


def test_preferences_languages_topics_muted(rig: Rig) -> None:
    anyone = rig.join()
    french = rig.join(languages=["fr"])
    english = rig.join(languages=["en", "ar"])
    health = rig.join(topics=["health"])
    scams = rig.join(topics=["safety-scams"])
    muted = rig.join(muted=True)
    post_id = rig.post(
        "clinic", "The health clinic offers free vaccination and medicine on Saturday.", lang="en"
    )
    rig.drain()
    got = by_member(rig, [anyone, french, english, health, scams, muted])
    assert got == {
        anyone.member_id: [post_id],
        french.member_id: [],
        english.member_id: [post_id],
        health.member_id: [post_id],
        scams.member_id: [],
        muted.member_id: [],
    }
    assert rig.stats(post_id) == {"targeted": 3, "sent": 3, "failed": 0, "pruned": 0, "deferred": 0}


def test_quiet_hours_defer_until_they_end_in_the_members_time_zone(rig: Rig) -> None:
    # 12:00 UTC is 21:00 in Tokyo (inside 20:00-07:00) and 08:00 in New York (outside it).
    tokyo = rig.join(quiet_hours={"start": "20:00", "end": "07:00", "timezone": "Asia/Tokyo"})
    new_york = rig.join(quiet_hours={"start": "20:00", "end": "07:00", "timezone": "America/New_York"})
    post_id = rig.post("night", "The night ferry leaves at eleven from pier four.")
    rig.drain()
    assert rig.received_by(new_york) == [post_id] and rig.received_by(tokyo) == []
    assert rig.stats(post_id) == {"targeted": 2, "sent": 1, "failed": 0, "pruned": 0, "deferred": 1}
    rig.clock.advance(9 * 3600 + 59 * 60)  # 06:59 in Tokyo: still quiet
    rig.drain()
    assert rig.received_by(tokyo) == []
    rig.clock.advance(60)  # 07:00 in Tokyo
    rig.drain()
    assert rig.received_by(tokyo) == [post_id]
    assert rig.stats(post_id) == {"targeted": 2, "sent": 2, "failed": 0, "pruned": 0, "deferred": 1}
    assert rig.push.duplicates() == {}


def test_a_scheduled_post_goes_out_at_its_time_not_before(rig: Rig) -> None:
    member = rig.join()
    at = "2025-06-02T15:00:00Z"  # three hours after the rig's clock
    post_id = rig.post("later", "The market moves to the square on Sunday.", publish_at=at)
    rig.drain()
    assert rig.received_by(member) == []
    rig.clock.advance(3 * 3600 - 1)
    rig.drain()
    assert rig.received_by(member) == []
    rig.clock.advance(1)
    rig.drain()
    assert rig.received_by(member) == [post_id]


def test_a_scheduled_post_deleted_before_its_time_never_goes_out(rig: Rig) -> None:
    member = rig.join()
    rig.post("gone", "A post taken back before it was due.", publish_at="2025-06-02T13:00:00Z")
    rig.drain()
    rig.s3.delete_object(Bucket=rig.bucket, Key=f"posts/{COMMUNITY}/gone.json")
    rig._drain_queue("INGEST_QUEUE_URL", rig.ingest)
    rig.clock.advance(3600)
    rig.drain()
    assert rig.received_by(member) == [] and rig.queued("PLANNER_QUEUE_URL") == 0


def test_gone_subscriptions_are_pruned_and_dead_members_uncounted(rig: Rig) -> None:
    gone = rig.join()
    missing = rig.join()
    device = rig.join(web=False, device="dead-device-token")
    ok = rig.join()
    rig.push.expire(rig.sid(gone))  # 410
    rig.push.respond_with(rig.sid(missing), 404)
    assert device.endpoint_arn is not None
    rig.sns.set_endpoint_attributes(EndpointArn=device.endpoint_arn, Attributes={"Enabled": "false"})
    post_id = rig.post("p", "Buses to the border are free this week.")
    rig.drain()
    assert rig.received_by(ok) == [post_id]
    assert rig.stats(post_id) == {"targeted": 4, "sent": 1, "failed": 0, "pruned": 3, "deferred": 0}
    store = rig.members()
    # Each of the three had one subscription: with it gone nobody can reach them, and a member is
    # someone Herald can push to. They are removed and no longer counted.
    for member in (gone, missing, device):
        assert store.member(COMMUNITY, member.member_id) is None
        assert store.claims(COMMUNITY, member.subscriptions) == {}
    settle(rig)
    assert store.count(COMMUNITY) == 1
    # A second post goes to the one subscription left.
    second = rig.post("q", "The food bank is open late on Thursday.")
    rig.drain()
    assert rig.received_by(ok) == [post_id, second]
    assert rig.stats(second) == {"targeted": 1, "sent": 1, "failed": 0, "pruned": 0, "deferred": 0}


def test_throttling_and_server_errors_are_retried_then_given_up(rig: Rig) -> None:
    throttled = rig.join()
    flaky = rig.join()
    broken = rig.join()
    rig.push.respond_with(rig.sid(throttled), 429, times=1, retry_after=0)
    rig.push.respond_with(rig.sid(flaky), 503, times=2)
    rig.push.respond_with(rig.sid(broken), 500, times=10)  # more than max_attempts=3
    post_id = rig.post("r", "The registration office closes early on Friday.")
    rig.drain()
    assert rig.received_by(throttled) == [post_id] and rig.received_by(flaky) == [post_id]
    assert rig.received_by(broken) == []
    assert rig.push.stats()["by_subscription"][rig.sid(broken)]["received"] == 3
    assert rig.stats(post_id) == {"targeted": 3, "sent": 2, "failed": 1, "pruned": 0, "deferred": 0}
    # One item per push job (the planner's, then each retry's), each done and expiring; none per member.
    items = rig.ledger().ddb.scan(TableName=rig.env["DELIVERIES_TABLE"])["Items"]
    jobs = [item for item in items if item["pk"]["S"].startswith(f"J#{COMMUNITY}#{post_id}#")]
    assert len(jobs) >= 3 and {j["state"]["S"] for j in jobs} == {"done"}
    assert {item["pk"]["S"].split("#")[0] for item in items} == {"F", "J"}
    assert all(int(j["expires_at"]["N"]) > rig.clock.now for j in jobs)


def test_auth_failures_are_counted_and_prune_nothing(rig: Rig) -> None:
    refused = rig.join()
    rig.push.respond_with(rig.sid(refused), 403, times=1)
    unauthorised = rig.join()
    rig.push.respond_with(rig.sid(unauthorised), 401, times=1)
    post_id = rig.post("s", "Interpreters are available at the clinic on Monday.")
    rig.drain()
    assert rig.stats(post_id) == {"targeted": 2, "sent": 0, "failed": 2, "pruned": 0, "deferred": 0}
    stats = rig.ledger().ddb.get_item(
        TableName=rig.env["DELIVERIES_TABLE"],
        Key={"pk": {"S": f"F#{COMMUNITY}#{post_id}"}, "sk": {"S": "STATS"}},
    )["Item"]
    assert stats["auth_failures"]["N"] == "2"
    for member in (refused, unauthorised):
        after = rig.members().member(COMMUNITY, member.member_id)
        assert after is not None and after.web_push == member.web_push


def test_many_members_over_shards_pages_and_jobs(rig: Rig) -> None:
    rig.use_planner(page_size=7, members_per_job=3)
    members = [rig.join(shard=i % 4) for i in range(60)]
    post_id = rig.post("big", "The community meeting is on Sunday at the library.")
    rig.drain()
    assert all(rig.received_by(m) == [post_id] for m in members)
    assert rig.push.duplicates() == {}
    assert rig.stats(post_id) == {"targeted": 60, "sent": 60, "failed": 0, "pruned": 0, "deferred": 0}


def test_the_subscription_id_of_a_target_is_the_members_claim(rig: Rig) -> None:
    member = rig.join()
    assert member.web_push is not None
    assert member.subscriptions == [subscription_id(web_push=member.web_push)]


def test_the_api_shows_a_posts_delivery_statistics(rig: Rig, monkeypatch: Any) -> None:
    from herald.api import app as api_app
    from tests.integration.api_events import rest_event
    from tests.integration.conftest import LambdaContext, load_handler

    members = [rig.join() for _ in range(3)]
    rig.push.expire(rig.sid(members[0]))
    post_id = rig.post("api", "The library lends laptops from Monday.")
    monkeypatch.setenv("MEMBER_TOKEN_SECRET_ARN", "unused-here")
    api_app.configure(None)
    api = load_handler("api")

    def delivery() -> Any:
        response = api.handler(
            rest_event("GET", f"/communities/{COMMUNITY}/posts/{post_id}"), LambdaContext()
        )
        assert response["statusCode"] == 200, response
        return json.loads(response["body"])["delivery"]

    try:
        assert delivery() is None
        rig.drain()
        assert delivery() == {"targeted": 3, "sent": 2, "failed": 0, "pruned": 1, "deferred": 0}
    finally:
        api_app.configure(None)


def _counted_planner(rig: Rig, **options: Any) -> tuple[Counter[str], list[dict[str, Any]]]:
    """The planner on clients of its own, every AWS call counted by operation (a botocore hook; the
    post's one read from the content table aside), and every job it queues on the planner queue."""
    import boto3

    from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger
    from herald.fanout.adapters.sqs_jobs import SqsJobQueue
    from herald.members.adapters.dynamo_members import DynamoMemberStore

    calls: Counter[str] = Counter()
    ddb, sqs = boto3.client("dynamodb", region_name=REGION), boto3.client("sqs", region_name=REGION)
    for client in (ddb, sqs):
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    queued: list[dict[str, Any]] = []

    class Recorded(SqsJobQueue):
        def send(self, bodies: Any, delay_s: int = 0) -> None:
            super().send(bodies, delay_s)
            queued.extend(json.loads(b) if isinstance(b, str) else dict(b) for b in bodies)

    env = rig.env
    ports = {
        "ledger": DynamoDeliveryLedger(env["DELIVERIES_TABLE"], ddb),
        "members": DynamoMemberStore(env["MEMBERS_TABLE"], int(env["MEMBER_COUNTER_SHARDS"]), ddb),
        "planner_queue": Recorded(env["PLANNER_QUEUE_URL"], sqs),
        "push_queue": SqsJobQueue(env["PUSH_JOB_QUEUE_URL"], sqs),
    }
    rig.use_planner(lambda name, _port: ports[name], **options)
    return calls, queued


def settle(rig: Rig) -> None:
    """Let the member counter read the members table's stream: the counts are exact after it."""
    StreamCounter(
        rig.ddb, rig.streams, rig.env["MEMBERS_TABLE"], int(rig.env["MEMBER_COUNTER_SHARDS"])
    ).settle()


def test_planner_a_post_to_an_empty_community_costs_no_page_and_no_job(rig: Rig) -> None:
    elsewhere = [rig.join(community="other", shard=s) for s in range(0, 32, 3)]
    settle(rig)
    calls, queued = _counted_planner(rig)
    rig.post("p", "The library opens late on Thursday.")
    rig.drain()
    # Begun, the shard counts read (one BatchGetItem for the 32 counters), each shard counted 0
    # looked at (a Query of one item: the counts come from the stream, a member may be on its way),
    # recorded planned.
    assert calls == {"PutItem": 1, "BatchGetItem": 1, "Query": 32, "UpdateItem": 1}
    assert queued == [] and rig.invocations.get("PUSH_JOB_QUEUE_URL", 0) == 0
    assert all(rig.received_by(m) == [] for m in elsewhere)


def test_planner_ten_members_are_planned_in_the_release_itself(rig: Rig) -> None:
    members = [rig.join(shard=s) for s in (0, 0, 3, 7, 7, 7, 12, 20, 25, 31)]
    settle(rig)
    calls, queued = _counted_planner(rig)
    post_id = rig.post("p", "The library opens late on Thursday.")
    rig.drain()
    # One Query of one item per shard counted 0 (25), one page per shard with members (7 of 32),
    # their push jobs in one SendMessageBatch, no shard job.
    assert calls == {"PutItem": 1, "BatchGetItem": 1, "Query": 32, "SendMessageBatch": 1, "UpdateItem": 1}
    assert queued == []
    assert all(rig.received_by(m) == [post_id] for m in members) and rig.push.duplicates() == {}
    assert rig.stats(post_id) == {"targeted": 10, "sent": 10, "failed": 0, "pruned": 0, "deferred": 0}


def test_planner_a_larger_community_gets_a_shard_job_per_shard_with_members(rig: Rig) -> None:
    members = [rig.join(shard=s) for s in (2, 9, 9, 9, 30)]
    settle(rig)
    calls, queued = _counted_planner(rig, small_community=4, page_size=2)
    post_id = rig.post("p", "The library opens late on Thursday.")
    rig.drain()
    # The start queued the three shards' first pages; shard 9's first page queued its second.
    assert [(j["shard"], j["after"] is None) for j in queued] == [
        (2, True),
        (9, True),
        (30, True),
        (9, False),
    ]
    assert calls["Query"] == 29 + 4 and calls["BatchGetItem"] == 1  # 29 shards counted 0 looked at
    assert all(rig.received_by(m) == [post_id] for m in members) and rig.push.duplicates() == {}
