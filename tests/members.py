"""Members as the tests make them: a browser's ``p256dh``, and a member as a join stores it (written
straight to the members table, without the API)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from herald.members.rules import Device, Member, Preferences, WebPushSubscription, subscription_id


def p256_point(secret: int) -> str:
    """A browser-like ``p256dh``: the uncompressed public point of a P-256 key, base64url."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = ec.derive_private_key(secret, ec.SECP256R1()).public_key()
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def new_member(
    community: str,
    *,
    web_push: WebPushSubscription | None = None,
    device: Device | None = None,
    endpoint_arn: str | None = None,
    member_id: str | None = None,
    shard: int | None = None,
    shards: int = 1,
    preferences: Preferences | None = None,
) -> Member:
    """A member of ``community`` with the given subscriptions and a placeholder token hash; a random
    id and a shard (of ``shards``) taken from the id, unless given."""
    member_id = member_id or uuid.uuid4().hex
    subscriptions = [subscription_id(web_push=web_push)] if web_push is not None else []
    if device is not None:
        subscriptions.append(subscription_id(device=device))
    now = datetime.now(UTC)
    return Member(
        community=community,
        member_id=member_id,
        shard=shard if shard is not None else int(member_id[:8], 16) % shards,
        token_hash="0" * 64,
        subscriptions=subscriptions,
        web_push=web_push,
        device=device,
        endpoint_arn=endpoint_arn,
        preferences=preferences or Preferences(),
        joined_at=now,
        updated_at=now,
    )
