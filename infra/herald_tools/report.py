"""What a running Herald holds: every upload's outcome, the posts and the communities.

``build_report`` gives the JSON document described in docs/report.md; ``render_text`` turns it
into something a person reads: grouped by community, with counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from herald.content.counts import member_count
from herald.content.models import REPORTED_POST_FIELDS
from herald.ingest.ports import ContentStore
from herald.members.ports import MemberStore

#: Every field of a post but where an export held it (:data:`herald.content.models.REPORTED_POST_FIELDS`).
POST_FIELDS = REPORTED_POST_FIELDS
COMMUNITY_FIELDS = ("id", "name", "description", "verified", "members", "posts", "created_year")
OBJECT_FIELDS = (
    "key",
    "status",
    "post_ids",
    "errors",
    "community",
    "detail",
    "variant",
    "warnings",
    "duplicate_of",
    "counts",
    "processed_at",
    "event_time",
    "rejected_copy",
    "correlation_id",
)


def build_report(
    store: ContentStore, members: MemberStore | None = None, deliveries: Any | None = None
) -> dict[str, Any]:
    """The report; with ``members``, each community's ``members`` is exact: the export's baseline
    plus joins minus leaves (the sum of its counter shards)."""
    communities = sorted(store.communities(), key=lambda c: c.id)
    if members is not None:
        communities = [
            c.model_copy(update={"members": member_count(c.members_baseline, members.count(c.id))})
            for c in communities
        ]
    posts = [p for c in communities for p in store.community_posts(c.id)]
    objects = sorted(store.outcomes(), key=lambda o: o.key)
    return {
        "objects": [o.model_dump(mode="json", include=set(OBJECT_FIELDS)) for o in objects],
        "posts": [
            _with_delivery(p.model_dump(mode="json", include=set(POST_FIELDS)), deliveries) for p in posts
        ],
        "communities": [c.model_dump(mode="json", include=set(COMMUNITY_FIELDS)) for c in communities],
        "summary": {
            "objects": len(objects),
            "posts": len(posts),
            "communities": len(communities),
            "by_status": dict(sorted(Counter(str(o.status) for o in objects).items())),
        },
    }


def _with_delivery(post: dict[str, Any], deliveries: Any | None) -> dict[str, Any]:
    """``delivery``: the post's push statistics (targeted, sent, failed, pruned, deferred), or None."""
    if deliveries is not None:
        post["delivery"] = deliveries.stats(post["community"], post["id"])
    return post


def render_text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    summary = report["summary"]
    by_status = ", ".join(f"{n} {status}" for status, n in summary["by_status"].items()) or "none"
    lines.append(
        f"Herald holds {summary['communities']} communities, {summary['posts']} posts; "
        f"{summary['objects']} uploads ({by_status})."
    )
    posts_by_community: dict[str, list[dict[str, Any]]] = {}
    for post in report["posts"]:
        posts_by_community.setdefault(post["community"], []).append(post)
    for community in report["communities"]:
        lines.append("")
        badge = " ✔ verified" if community["verified"] else ""
        lines.append(f"■ {community['name']} ({community['id']}){badge}")
        if community.get("description"):
            lines.append(f"  {community['description']}")
        created = f", created in {community['created_year']}" if community.get("created_year") else ""
        lines.append(f"  {community['members']:,} members, {community['posts']} posts{created}")
        for post in posts_by_community.get(community["id"], []):
            facts = [post.get("language") or "?"]
            if post.get("countries"):
                facts.append(" ".join(post["countries"]))
            if post.get("topics"):
                facts.append(", ".join(post["topics"]))
            version = f" v{post['version']}" if post.get("version", 1) > 1 else ""
            lines.append(f"  • {post['title']}{version}  [{' · '.join(facts)}]")
    lines.append("")
    lines.append("Uploads:")
    for obj in report["objects"]:
        detail = f" — {obj['detail']}" if obj.get("detail") and not obj.get("errors") else ""
        lines.append(f"  {obj['status']:<9} {obj['key']}{detail}")
        for error in obj.get("errors") or []:
            lines.append(f"            ✗ {error['loc']}: {error['message']}")
    return "\n".join(lines)
