"""``herald demo --subscribers N``: members with real push subscriptions of the local push service,
joined through the local API, and what the push service received for them.

The expectation (who should have received which post) is computed here from the members' preferences
and the notifying posts, on its own, not with the planner's code: muted members get nothing; a member
with languages or topics gets only posts in one of those languages or with one of those topics; a
member inside their quiet hours gets the post later (the demo gives quiet hours that are not now).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from herald_tools.members_sim import LANGUAGES, TOPICS, _Http


@dataclass
class Subscriber:
    member_id: str
    subscription_id: str
    languages: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    muted: bool = False
    quiet_hours: dict[str, str] | None = None


def _quiet_hours_not_now(rng: random.Random, now: dt.datetime) -> dict[str, str]:
    zone = rng.choice(["Europe/Paris", "Asia/Tokyo", "America/New_York", "Africa/Nairobi", "UTC"])
    local = now.astimezone(ZoneInfo(zone))
    start = local + dt.timedelta(hours=rng.randint(3, 8))
    end = start + dt.timedelta(hours=rng.randint(1, 6))
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "timezone": zone}


def join_subscribers(
    api_url: str, push: Any, application_server_key: str | None, community: str, n: int, rng: random.Random
) -> list[Subscriber]:
    """``n`` members, each with a new subscription of ``push``; a third with languages, a fifth with
    topics, one in twelve muted, one in six with quiet hours (not now)."""
    call = _Http(api_url)
    now = dt.datetime.now(dt.UTC)
    joined: list[Subscriber] = []
    for _ in range(n):
        subscription = push.new_subscription(application_server_key=application_server_key)
        body: dict[str, Any] = {"web_push": subscription}
        if rng.random() < 1 / 3:
            body["languages"] = rng.sample(LANGUAGES, rng.randint(1, 2))
        if rng.random() < 1 / 5:
            body["topics"] = rng.sample(TOPICS, 1)
        status, answer = call("POST", f"/communities/{community}/members", body)
        if status != 201:
            raise RuntimeError(f"joining {community}: {status} {answer}")
        member = Subscriber(
            member_id=answer["member_id"],
            subscription_id=push.subscription_id(subscription),
            languages=body.get("languages", []),
            topics=body.get("topics", []),
        )
        patch: dict[str, Any] = {}
        if rng.random() < 1 / 12:
            patch["muted"] = member.muted = True
        if rng.random() < 1 / 6:
            patch["quiet_hours"] = member.quiet_hours = _quiet_hours_not_now(rng, now)
        if patch:
            path = f"/communities/{community}/members/{member.member_id}"
            status, answer = call("PATCH", path, patch, answer["token"])
            if status != 200:
                raise RuntimeError(f"preferences of {member.member_id}: {status} {answer}")
        joined.append(member)
    return joined


def _quiet_now(hours: dict[str, str] | None, at: dt.datetime) -> bool:
    if not hours:
        return False
    local = at.astimezone(ZoneInfo(hours["timezone"])).strftime("%H:%M")
    start, end = hours["start"], hours["end"]
    return start <= local < end if start < end else (local >= start or local < end)


def expected(
    subscribers: Iterable[Subscriber], posts: Iterable[dict[str, Any]], at: dt.datetime
) -> set[tuple[str, str]]:
    """(member id, post id) pairs that should have arrived by ``at``."""
    notifying = [
        p
        for p in posts
        if p.get("source", "post") == "post"
        and p.get("notify", True)
        and (not p.get("publish_at") or dt.datetime.fromisoformat(p["publish_at"]) <= at)
    ]
    pairs: set[tuple[str, str]] = set()
    for s in subscribers:
        if s.muted or _quiet_now(s.quiet_hours, at):
            continue
        for post in notifying:
            if s.languages and post.get("language") not in s.languages:
                continue
            if s.topics and not set(s.topics) & set(post.get("topics") or []):
                continue
            pairs.add((s.member_id, post["id"]))
    return pairs


def push_report(push: Any, subscribers: list[Subscriber], posts: list[dict[str, Any]]) -> dict[str, Any]:
    """``received``, ``decrypted``, ``duplicates`` (member, post, times), ``undelivered`` (member, post)."""
    by_subscription = {s.subscription_id: s.member_id for s in subscribers}
    got: Counter[tuple[str, str]] = Counter()
    for delivery in push.received():
        member = by_subscription.get(delivery.subscription_id)
        if member is not None and isinstance(delivery.json, dict):
            got[(member, str(delivery.json.get("post_id")))] += 1
    want = expected(subscribers, posts, dt.datetime.now(dt.UTC))
    stats = push.stats()
    return {
        "url": push.origin,
        "subscribers": len(subscribers),
        "received": stats["received"],
        "decrypted": stats["decrypted"],
        "expected": len(want),
        "duplicates": [
            {"member_id": m, "post_id": p, "times": n} for (m, p), n in sorted(got.items()) if n > 1
        ],
        "undelivered": [{"member_id": m, "post_id": p} for m, p in sorted(want - set(got))],
        "unexpected": [{"member_id": m, "post_id": p} for m, p in sorted(set(got) - want)],
    }
