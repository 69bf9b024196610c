"""The small interfaces the domain needs from the outside world.

Adapters in ``herald.adapters`` implement them on AWS; tests may implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from herald.domain.members import Member
from herald.domain.models import Community, CommunityProfile, Outcome, Post


class ObjectStore(Protocol):
    """The uploads bucket."""

    def read(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes | None:
        """At most ``max_bytes + 1`` bytes of the object (so callers can tell it is too big);
        None if the object (or that version) no longer exists."""
        ...

    def keep_rejected(
        self, bucket: str, key: str, version_id: str | None, report: dict[str, Any]
    ) -> str | None:
        """Copy the original beside its rejection report; returns the copy's key (None if gone)."""
        ...


@dataclass
class Change:
    """One atomic change to the content store: all of it happens, or none.

    ``expect_sequencer`` guards the upload record: the change applies only if the record still
    holds that sequencer (None: only if there is no record yet).
    """

    outcome: Outcome | None = None
    expect_sequencer: str | None = None
    create_posts: list[Post] = field(default_factory=list)
    update_posts: list[tuple[Post, int]] = field(default_factory=list)  # (new post, expected version)
    delete_posts: list[Post] = field(default_factory=list)
    release_hashes: list[tuple[str, str, str]] = field(default_factory=list)  # community, hash, owner
    profile: tuple[str, CommunityProfile] | None = None  # community, what its export says


class ContentStore(Protocol):
    """Posts, communities, duplicate claims and upload outcomes (DynamoDB on AWS)."""

    def outcome(self, key: str) -> Outcome | None: ...

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]: ...

    def lookup(
        self, community: str, post_ids: Sequence[str], hashes: Sequence[str]
    ) -> tuple[dict[str, Post], dict[str, str]]:
        """In one read: the posts that exist among ``post_ids``, and which post owns each text hash."""
        ...

    def commit(self, change: Change) -> None:
        """Apply ``change`` atomically; raise ConcurrentUpdate if a guard no longer holds."""
        ...

    # reads for reports and APIs
    def communities(self) -> Iterable[Community]: ...

    def community_posts(self, community: str) -> Iterable[Post]: ...

    def outcomes(self) -> Iterable[Outcome]: ...


class MemberStore(Protocol):
    """Members, their subscription claims and the sharded member counters (DynamoDB on AWS).

    Writes are atomic: a join puts the member, claims its subscriptions and counts it on its
    shard, or does nothing; a leave does the reverse. A guard that fails raises ConcurrentUpdate.
    """

    def claims(self, community: str, subscription_ids: Sequence[str]) -> dict[str, str]:
        """Subscription id -> member id, for the subscriptions that are claimed (strongly consistent)."""
        ...

    def member(self, community: str, member_id: str) -> Member | None: ...

    def create(self, member: Member) -> None:
        """Put the member, claim ``member.subscriptions``, add 1 to shard ``member.shard``."""
        ...

    def refresh(self, member: Member, new_claims: Sequence[str]) -> None:
        """A repeat join: rewrite the member's reachability (it must still exist), claim ``new_claims``."""
        ...

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        """Store ``member.preferences``; False if the member is gone."""
        ...

    def remove(self, community: str, member_id: str, expect_token_hash: str) -> Member | None:
        """Delete the member and its claims and take 1 from its shard; None if it was not there."""
        ...

    def count(self, community: str) -> int:
        """Joins minus leaves: the sum of the community's counter shards."""
        ...

    def members(self, community: str, shard: int) -> Iterable[Member]:
        """The members counted on ``shard``, by member id."""
        ...


class DeviceRegistry(Protocol):
    """Mobile push endpoints (SNS platform endpoints on AWS)."""

    def register(self, platform: str, token: str) -> str:
        """The endpoint's ARN (the same for the same token); raises PushNotConfigured."""
        ...

