"""Member counts from the members table's stream, on moto: joins, repeats and leaves racing each
other, the counter function crashing, batches delivered again (whole, or grown), and a join that
stopped between its two writes. The count is never off by one once the stream is read.

The stream records are moto's own (``AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled`` lets this botocore
read moto's DynamoDB Streams), delivered by the local cloud's event source poller with the event
source template.yaml gives the counter (:mod:`tests.member_counts`): a batch the function fails is
given again whole, in order, as Lambda's DynamoDB event source does.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from herald.core.errors import TransientError
from herald.members.adapters.dynamo_members import CLAIM_GRACE_S, DynamoMemberStore, shard_key
from herald.members.rules import JoinRequest
from herald.members.service import MembershipService
from tests.fakes.members import MemoryDevices, MemorySecret
from tests.faults import Crash, Fault, FaultyCalls
from tests.integration.api_events import response_json
from tests.integration.conftest import Api, LambdaContext
from tests.integration.test_api import COMMUNITY, bearer, join, seed, web_push
from tests.member_counts import StreamCounter, settle_api

BASELINE = 222_000


@pytest.fixture
def serialized_moto() -> Iterator[None]:
    """moto's DynamoDB one request at a time, as the local cloud runs it (DynamoDB isolates writes)."""
    from herald_tools.localcloud import moto_locks

    installed = moto_locks.install()
    yield
    if installed:
        moto_locks.uninstall()


def truth(api: Api) -> dict[int, int]:
    """Each shard's members as the table holds them (the gsi1 partitions)."""
    store = api.members()
    return {s: n for s in range(store.shards) if (n := len(list(store.members(COMMUNITY, s))))}


def counters(api: Api) -> dict[int, int]:
    """The counter items alone (no look at the index)."""
    store = api.members()
    items = store.batch_get_items(
        [shard_key(COMMUNITY, s) for s in range(store.shards)],
        consistent=True,
        what="test",
    )
    found = {int(i["pk"]["S"].rsplit("#", 1)[1]): int(i["n"]["N"]) for i in items}
    return {s: n for s, n in found.items() if n}


def public_count(api: Api) -> int:
    return int(response_json(api.call("GET", f"/communities/{COMMUNITY}"))["members"])


def leave(api: Api, member: dict[str, str]) -> int:
    path = f"/communities/{COMMUNITY}/members/{member['member_id']}"
    return int(api.call("DELETE", path, headers=bearer(member["token"]))["statusCode"])


def service_on(api: Api, clock: Any = None) -> MembershipService:
    """The membership service on the API's members table (devices and the secret in memory)."""
    now = clock or (lambda: datetime.now(UTC).timestamp())
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return MembershipService(
        store=DynamoMemberStore(api.members_table, dynamodb=ddb, clock=now),
        devices=MemoryDevices(),
        secret=MemorySecret(),
        clock=lambda: datetime.fromtimestamp(now(), UTC),
        random_below=random.SystemRandom().randrange,
        random_bytes=random.SystemRandom().randbytes,
    )


def test_joins_repeats_and_leaves_racing_are_counted_exactly(api: Api, serialized_moto: None) -> None:
    # The race is the store's and the service's, so 8 threads call the service at once (an API
    # function handles one request at a time per environment; tests/e2e/test_api_concurrency.py
    # races them over HTTP through the local cloud's processes).
    seed(api, baseline=BASELINE)
    service = service_on(api)
    rng = random.Random(12)

    def request(n: int) -> JoinRequest:
        return JoinRequest.model_validate({"web_push": web_push(n)})

    first = {n: service.join(COMMUNITY, request(n)) for n in range(40)}
    # While the counter reads the stream: new joins (each sent twice, as a retry whose answer was
    # lost), repeats of existing members with their tokens, and leaves (some sent twice).
    leaving = rng.sample(range(40), 15)
    work: list[tuple[str, int]] = [("join", n) for n in range(100, 160)] * 2
    work += [("repeat", n) for n in rng.sample(sorted(set(range(40)) - set(leaving)), 20)]
    work += [("leave", n) for n in leaving] + [("leave", n) for n in leaving[:5]]
    rng.shuffle(work)
    counter = settle_api(api)
    stop = threading.Event()

    def count_meanwhile() -> None:
        while not stop.is_set():
            counter.poller.poll_once()

    def run(item: tuple[str, int]) -> tuple[str, bool]:
        kind, n = item
        if kind == "leave":
            return kind, service.leave(COMMUNITY, first[n].member.member_id, first[n].token)
        token = first[n].token if kind == "repeat" else None
        result = service.join(COMMUNITY, request(n), token=token)
        if kind == "repeat":
            assert result.member.member_id == first[n].member.member_id
        return kind, result.created

    reader = threading.Thread(target=count_meanwhile)
    reader.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, work))
    finally:
        stop.set()
        reader.join()
    outcomes = Counter(results)
    # Each new subscription created once, its twin a repeat; each leave ended a membership once.
    assert outcomes == {
        ("join", True): 60,
        ("join", False): 60,
        ("repeat", False): 20,
        ("leave", True): 15,
        ("leave", False): 5,
    }, outcomes
    counter.settle()
    expected = truth(api)
    assert sum(expected.values()) == 40 - 15 + 60
    assert counters(api) == expected
    assert public_count(api) == BASELINE + 40 - 15 + 60


def test_crashes_and_batches_delivered_again_never_count_twice(api: Api) -> None:
    seed(api, baseline=BASELINE)
    counter = settle_api(api)
    counter.source.properties["BatchSize"] = 7  # many batches, each over a few shards
    members = [response_json(join(api, {"web_push": web_push(n)})) for n in range(30)]
    for member in members[:8]:
        assert leave(api, member) == 204
    for n in range(8, 12):  # repeats: rewrites of the member item, counted 0
        assert join(api, {"web_push": web_push(n)}, token=members[n]["token"])["statusCode"] == 200

    crash_before = Fault("the counter dying before it counts a batch")
    crash_after = Fault("the counter dying after it counted a batch (the event source sees a failure)")
    seen: Counter[tuple[str, str]] = Counter()

    def fault(event: dict[str, Any], when: str) -> None:
        first = event["Records"][0]["eventID"]
        seen[(first, when)] += 1
        if seen[(first, when)] == 1 and len(seen) % 3 == 0:
            (crash_before if when == "before" else crash_after).fire()
            raise Crash(f"the counter crashed {when} counting")

    counter.function.fault = fault
    counter.settle()
    counter.function.fault = None
    assert crash_before.fired and crash_after.fired
    expected = truth(api)
    assert sum(expected.values()) == 22 and counters(api) == expected

    # Every batch delivered again, as it was; then every batch again grown by the next one's
    # records (a retried batch that starts with the same record and goes on further).
    delivered = list(counter.function.events)
    for event in delivered:
        counter.handler.handler(event, LambdaContext())
    for event, following in itertools.pairwise(delivered):
        counter.handler.handler({"Records": event["Records"] + following["Records"]}, LambdaContext())
    assert counters(api) == expected
    assert public_count(api) == BASELINE + 22

    # Then more joins and leaves: counted from where the stream is.
    later = [response_json(join(api, {"web_push": web_push(n)})) for n in range(200, 205)]
    assert leave(api, later[0]) == 204 and leave(api, members[20]) == 204
    counter.settle()
    assert counters(api) == truth(api) and sum(truth(api).values()) == 22 + 5 - 2


def markers(api: Api) -> list[dict[str, Any]]:
    """The count markers of the community (one per counter shard per batch counted)."""
    items = api.ddb.scan(
        TableName=api.members_table,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": f"L#{COMMUNITY}#"}},
    )["Items"]
    return list(items)


def test_a_batch_cut_off_mid_way_retried_and_replayed_is_counted_once(api: Api) -> None:
    """One stream batch over many counter shards: the function dies after 5 of its shards' writes
    (Lambda gives the same batch again: the other shards are counted, the 5 are not counted
    again); then the next batch is counted but its answer is lost (a time-out: given again,
    nothing is added); then both batches are delivered once more (a duplicate invocation)."""
    seed(api, baseline=BASELINE)
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shards = int(api.environment["MEMBER_COUNTER_SHARDS"])
    counter = StreamCounter(api.ddb, streams, api.members_table, shards)
    counter.settle()
    members = [response_json(join(api, {"web_push": web_push(n)})) for n in range(40)]
    touched = truth(api)
    assert len(touched) > 5 and sum(touched.values()) == 40

    client = boto3.client("dynamodb", region_name="us-east-1")
    cut_off = FaultyCalls(client, "transact_write_items", nth=5, after=True)
    counter.handler.configure(lambda: DynamoMemberStore(api.members_table, shards, dynamodb=cut_off))
    counter.settle()
    assert cut_off.fired == 1
    first, retried = counter.function.events
    assert retried == first and len(first["Records"]) == 40  # moto's 40 INSERTs, given again whole
    # Each shard's ADD committed once: 5 before the crash, the rest on the retry, whose 5
    # repeats found their markers and were cancelled.
    assert cut_off.calls == len(touched) + 5
    assert counters(api) == touched and len(markers(api)) == len(touched)

    for member in members[:6]:
        assert leave(api, member) == 204
    lost = Fault("the counter's answer lost after it counted a batch (the function timed out)")

    def answer_lost(event: dict[str, Any], when: str) -> None:
        if when == "after" and not lost.fired:
            lost.fire()
            raise Crash("the function timed out after it counted")

    counter.function.fault = answer_lost
    counter.settle()
    counter.function.fault = None
    assert lost.fired == 1
    _, _, second, second_again = counter.function.events
    assert second_again == second and len(second["Records"]) == 6  # moto's 6 REMOVEs
    assert counters(api) == truth(api) and sum(counters(api).values()) == 34

    for event in (first, second):
        assert counter.handler.handler(event, LambdaContext()) == {
            "records": len(event["Records"]),
            "writes": 0,
        }
    assert counters(api) == truth(api)
    assert public_count(api) == BASELINE + 34


def test_a_batch_the_event_source_gives_up_on_is_not_counted_and_the_rest_is(
    api: Api,
) -> None:
    # With MaximumRetryAttempts exhausted (here 1), Lambda skips the batch and sends its shard and
    # range to the on-failure destination: those records are not counted (docs/members.md says
    # what to do then). The rest of the stream goes on being counted exactly.
    seed(api, baseline=BASELINE)
    counter = settle_api(api)
    counter.source.properties["MaximumRetryAttempts"] = 1
    members = [response_json(join(api, {"web_push": web_push(n)})) for n in range(5)]
    dead = Fault("the counter failing every delivery of a batch")

    def always(event: dict[str, Any], when: str) -> None:
        if when == "before" and counter.poller.skipped == 0:
            dead.fire()
            raise RuntimeError("DynamoDB unavailable")

    counter.function.fault = always
    counter.settle()
    assert counter.poller.skipped == 5 and counters(api) == {}
    counter.function.fault = None
    assert leave(api, members[0]) == 204
    counter.settle()
    assert sum(counters(api).values()) == -1  # the leave, counted; the 5 joins were given up on


def test_a_join_that_stopped_between_its_claim_and_its_member(api: Api) -> None:
    """The claim was written, the member was not (the function died): the count has nothing to
    take back, a retry within the grace period is answered 503 (a join may still be on its way),
    and once the claim is older the next join releases it and counts the member once."""
    seed(api, baseline=BASELINE)
    now = [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    service = service_on(api, clock=lambda: now[0])
    ddb = service.store.ddb  # type: ignore[attr-defined]
    request = JoinRequest.model_validate({"web_push": web_push(1)})
    died = Fault("the API function dying between a join's claim and its member")

    def die_on_the_member(params: dict[str, Any], **_: Any) -> None:
        if params["Item"]["pk"]["S"].startswith("M#"):
            died.fire()
            raise Crash("the function died")

    ddb.meta.events.register("provide-client-params.dynamodb.PutItem", die_on_the_member)
    with pytest.raises(Crash):
        service.join(COMMUNITY, request)
    ddb.meta.events.unregister("provide-client-params.dynamodb.PutItem", die_on_the_member)
    with pytest.raises(TransientError):
        service.join(COMMUNITY, request)  # within the grace period: maybe a join on its way
    now[0] += CLAIM_GRACE_S + 1
    result = service.join(COMMUNITY, request)
    assert result.created
    assert service.join(COMMUNITY, request).member.member_id == result.member.member_id  # same keys
    settle_api(api)
    assert truth(api) == counters(api) and sum(counters(api).values()) == 1
    assert public_count(api) == BASELINE + 1


def test_the_counter_reads_only_member_items(api: Api) -> None:
    seed(api, baseline=BASELINE)
    counter = settle_api(api)
    join(api, {"web_push": web_push(1)})
    counter.settle()
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for e in counter.function.events for r in e["Records"]]
    assert keys and all(k.startswith("M#") for k in keys)  # not the claims, counters or markers
    assert counter.poller.filtered > 0
