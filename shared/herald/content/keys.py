"""The content table's keys that more than one feature reads (a post's, a community's partition)."""

from __future__ import annotations

from typing import Any


def community_pk(community: str) -> str:
    return f"C#{community}"


def post_key(community: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"POST#{post_id}"}}
