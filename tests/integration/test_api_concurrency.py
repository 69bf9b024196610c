"""Joins and leaves from 16 threads, with duplicates and retries: the member count stays exact.

moto's in-process mock is not safe for concurrent calls, so this runs against moto's threaded
server (one per process, no ``mock_aws`` while it runs); every thread calls the handler with its
own resolver, as concurrent Lambda environments would.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from herald.domain.models import CommunityProfile
from herald.domain.ports import Change
from tests.integration.api_events import response_json, rest_event
from tests.integration.conftest import Api, LambdaContext, start_api
from tests.integration.test_api import COMMUNITY, web_push

BASELINE = 1_000


#: moto's DynamoDB backend has no isolation between threads (two transactions can both pass the
#: same ``attribute_not_exists``, or fail with a 500); DynamoDB serializes them. The server runs in
#: this process, so its operations are serialized here as DynamoDB's are.
SERIALIZED = (
    "transact_write_items",
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "batch_get_item",
    "query",
    "scan",
)


def _serialize_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in SERIALIZED:
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


@pytest.fixture
def served_api(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from herald.adapters import aws
    from herald.api import app as api_app
    from herald_tools.localcloud.server import MotoServer

    _serialize_dynamodb(monkeypatch)
    server = MotoServer(port=0)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.start())
    server.reset()  # moto's state is per process: start from nothing, whatever ran here before
    try:
        yield start_api(monkeypatch)
    finally:
        api_app.configure(None)
        aws.client.cache_clear()
        server.reset()
        server.stop()


def _call(api: Api, method: str, path: str, body: Any = None, token: str | None = None) -> dict[str, Any]:
    """One request, retried as a client retries a 503 (moto's server fails some concurrent
    transactions with a 500, which the API answers 503: a real-world retry, of a request that may
    or may not have taken effect)."""
    from herald.api.app import handle

    headers = {"Authorization": f"Bearer {token}"} if token else None
    for _ in range(20):
        response = handle(rest_event(method, path, body=body, headers=headers), LambdaContext())
        if response["statusCode"] != 503:
            return response
    return response


def test_concurrent_joins_and_leaves_count_exactly(served_api: Api) -> None:
    api = served_api
    profile = CommunityProfile(name="Safe Routes", members=BASELINE)
    api.content().commit(Change(profile=(COMMUNITY, profile)))
    rng = random.Random(7)
    members_path = f"/communities/{COMMUNITY}/members"

    # Phase 1: 200 join attempts of 150 subscriptions (a quarter are repeats and retries).
    # (moto copies every table for each transaction, so its time grows with the data: kept small.)
    first = list(range(150))
    attempts = first + [rng.choice(first) for _ in range(50)]
    rng.shuffle(attempts)
    with ThreadPoolExecutor(16) as pool:
        joined = list(
            pool.map(lambda n: (n, _call(api, "POST", members_path, {"web_push": web_push(n)})), attempts)
        )
    statuses = Counter(r["statusCode"] for _, r in joined)
    # A retried join whose first try had gone through is answered 200: never a second member.
    assert set(statuses) <= {200, 201} and 140 <= statuses[201] <= 150, statuses
    by_sub: dict[int, set[tuple[str, str]]] = {}
    for n, response in joined:
        body = response_json(response)
        by_sub.setdefault(n, set()).add((body["member_id"], body["token"]))
    assert all(len(v) == 1 for v in by_sub.values()), "a subscription answered with two members"
    member_of = {n: next(iter(v)) for n, v in by_sub.items()}

    # Phase 2, at once: 60 leaves of 40 members (20 repeated) and 50 joins of 30 new subscriptions.
    leaving = rng.sample(first, 40)
    leaves = leaving + rng.sample(leaving, 20)
    new = list(range(150, 180))
    new_joins = new + [rng.choice(new) for _ in range(20)]
    work: list[tuple[str, int]] = [("leave", n) for n in leaves] + [("join", n) for n in new_joins]
    rng.shuffle(work)

    def run(item: tuple[str, int]) -> tuple[str, int, int]:
        kind, n = item
        if kind == "join":
            return kind, n, _call(api, "POST", members_path, {"web_push": web_push(n)})["statusCode"]
        member_id, token = member_of[n]
        return kind, n, _call(api, "DELETE", f"{members_path}/{member_id}", token=token)["statusCode"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, work))
    assert Counter(s for kind, _, s in results if kind == "leave") == {204: 60}
    joins = Counter(s for kind, _, s in results if kind == "join")
    assert set(joins) <= {200, 201} and 25 <= joins[201] <= 30, joins

    truth = BASELINE + 150 + 30 - 40
    community = response_json(_call(api, "GET", f"/communities/{COMMUNITY}"))
    assert community["members"] == truth
    store = api.members()
    assert BASELINE + store.count(COMMUNITY) == truth
    members = [m for shard in range(store.shards) for m in store.members(COMMUNITY, shard)]
    assert len(members) == 150 + 30 - 40
    assert len({m.member_id for m in members}) == len(members)
    assert {m.member_id for m in members}.isdisjoint({member_of[n][0] for n in leaving})
