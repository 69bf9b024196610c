"""The small interfaces membership needs from the outside world: the member store, the device
registry and the token secret.

Adapters in ``herald.members.adapters`` implement them on AWS; tests may implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from herald.members.rules import Member


class MemberStore(Protocol):
    """Members, their subscription claims and the sharded member counters (DynamoDB on AWS).

    A join claims its subscriptions and puts the member; a leave does the reverse. A guard that
    fails raises ConcurrentUpdate and leaves nothing of the write. The counts follow the members
    (on AWS from the table's stream, a second or two behind: :mod:`herald.members.counting`).
    """

    def claims(self, community: str, subscription_ids: Sequence[str]) -> dict[str, str]:
        """Subscription id -> member id, for the subscriptions that are claimed (strongly consistent)."""
        ...

    def member(self, community: str, member_id: str) -> Member | None: ...

    def create(self, member: Member) -> None:
        """Claim ``member.subscriptions`` and put the member (counted on shard ``member.shard``)."""
        ...

    def refresh(self, member: Member, new_claims: Sequence[str]) -> None:
        """A repeat join: rewrite the member's reachability (it must still exist), claim ``new_claims``."""
        ...

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        """Store ``member.preferences``; False if the member is gone."""
        ...

    def remove(self, community: str, member_id: str, expect_token_hash: str) -> Member | None:
        """Delete the member and its claims (taken off its shard's count); None if it was not there."""
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


class TokenSecret(Protocol):
    """The secret member tokens are derived from (Secrets Manager on AWS, read once and kept)."""

    def __call__(self) -> bytes:
        """At least 16 bytes; raises TransientError when it cannot be read for the moment."""
        ...
