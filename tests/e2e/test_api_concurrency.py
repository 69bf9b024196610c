"""Joins and leaves from 16 clients at once, with duplicates and retries: the member count stays exact.

The requests go over HTTP through the local cloud's API Gateway to the API function's execution
environments, each a process of its own, as on Lambda (the local cloud runs several at once). The
handler is not called from threads of one process: Powertools keeps the event being answered on
a class attribute (``BaseRouter.current_event``), so threads of one process answering at once
read each other's events (a leave answered 401 with a join's headers, a join made with another's
body). moto's DynamoDB requests are serialized by the local cloud (``moto_locks``), as DynamoDB
isolates transactions.
"""

from __future__ import annotations

import json
import os
import random
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from herald.content.models import CommunityProfile
from herald.ingest.adapters.dynamo_content import DynamoContentStore
from herald.ingest.ports import Change
from herald.members.adapters.dynamo_members import DynamoMemberStore
from herald_tools.localcloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "safe-routes"
BASELINE = 1_000
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    local = LocalCloud(
        ROOT / "template.yaml",
        project_root=ROOT,
        functions=["ApiFunction", "MemberCounterFunction"],
        concurrency=8,
    )
    with local.start(port=0, api_port=0) as running:
        yield running


def call(
    cloud: LocalCloud, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One request, retried as a client retries a 503 (a request that may or may not have taken
    effect: the retry must not count a member twice)."""
    assert cloud.api_url
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    for _ in range(20):
        request = urllib.request.Request(cloud.api_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                status, answer = response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            status, answer = error.code, json.loads(raw) if raw else None
        if status != 503:
            break
    return status, answer


def test_concurrent_joins_and_leaves_count_exactly(cloud: LocalCloud) -> None:
    content = DynamoContentStore(cloud.resources.content_table, cloud.client("dynamodb"))
    content.commit(Change(profile=(COMMUNITY, CommunityProfile(name="Safe Routes", members=BASELINE))))
    assert cloud.push_service is not None
    # Subscriptions of the local push service: loopback endpoints, which the local API accepts
    # without a DNS lookup. The same n is the same browser subscription (a repeat join).
    subscriptions = {n: cloud.push_service.new_subscription() for n in range(180)}
    rng = random.Random(7)
    members_path = f"/communities/{COMMUNITY}/members"

    def join(n: int) -> tuple[int, tuple[int, Any]]:
        return n, call(cloud, "POST", members_path, {"web_push": subscriptions[n]})

    # Phase 1: 200 join attempts of 150 subscriptions (a quarter are repeats and retries).
    first = list(range(150))
    attempts = first + [rng.choice(first) for _ in range(50)]
    rng.shuffle(attempts)
    with ThreadPoolExecutor(16) as pool:
        joined = list(pool.map(join, attempts))
    statuses = Counter(status for _, (status, _) in joined)
    # A repeat join with the same keys is the member's retry, answered 200: never a second member.
    assert set(statuses) <= {200, 201} and 140 <= statuses[201] <= 150, statuses
    by_sub: dict[int, set[tuple[str, str]]] = {}
    for n, (_, body) in joined:
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
            return kind, n, join(n)[1][0]
        member_id, token = member_of[n]
        return kind, n, call(cloud, "DELETE", f"{members_path}/{member_id}", token=token)[0]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, work))
    assert Counter(s for kind, _, s in results if kind == "leave") == {204: 60}
    joins = Counter(s for kind, _, s in results if kind == "join")
    assert set(joins) <= {200, 201} and 25 <= joins[201] <= 30, joins

    truth = BASELINE + 150 + 30 - 40
    cloud.wait_until_idle()  # the member counter has read the stream: the burst is settled
    status, community = call(cloud, "GET", f"/communities/{COMMUNITY}")
    assert status == 200 and community["members"] == truth
    store = DynamoMemberStore(cloud.resources.ref("MembersTable"), dynamodb=cloud.client("dynamodb"))
    assert BASELINE + store.count(COMMUNITY) == truth
    members = [m for shard in range(store.shards) for m in store.members(COMMUNITY, shard)]
    assert len(members) == 150 + 30 - 40
    assert len({m.member_id for m in members}) == len(members)
    assert {m.member_id for m in members}.isdisjoint({member_of[n][0] for n in leaving})
