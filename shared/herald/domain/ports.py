"""The small interfaces the domain needs from the outside world.

Adapters in ``herald.adapters`` implement them on AWS; tests may implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class ContentStore(Protocol):
    """Posts, communities, duplicate claims and upload outcomes (DynamoDB on AWS)."""

    def outcome(self, key: str) -> Outcome | None: ...

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]: ...

    def hash_owners(self, community: str, hashes: Sequence[str]) -> dict[str, str]: ...

    def save_profile(self, community: str, profile: CommunityProfile) -> None: ...

    def commit(self, change: Change) -> None:
        """Apply ``change`` atomically; raise ConcurrentUpdate if a guard no longer holds."""
        ...

    # reads for reports and APIs
    def communities(self) -> Iterable[Community]: ...

    def community_posts(self, community: str) -> Iterable[Post]: ...

    def outcomes(self) -> Iterable[Outcome]: ...
