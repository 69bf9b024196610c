"""Joining, changing preferences and leaving: the rules of :mod:`herald.members.rules` applied
through the ports (a MemberStore, a DeviceRegistry, the token secret, a clock, randomness)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from herald.content.ids import is_community_id
from herald.core.errors import ConcurrentUpdate, TransientError
from herald.core.observability import hashed
from herald.members.endpoints import EndpointPolicy
from herald.members.ports import DeviceRegistry, MemberStore, TokenSecret
from herald.members.rules import (
    MEMBER_ID,
    AlreadyJoined,
    CommunityNotFound,
    Forbidden,
    JoinRequest,
    JoinResult,
    Member,
    MemberGone,
    MissingToken,
    Preferences,
    PreferencesPatch,
    b64url_bytes,
    check_endpoint_allowed,
    choose_shard,
    derive_token,
    new_member_id,
    subscription_id,
    token_hash,
    verify_token,
)


def _token_holder(
    secret: bytes, community: str, owners: dict[str, str], subscriptions: list[str], token: str | None
) -> str | None:
    """The member among the subscriptions' owners whose token ``token`` is (None: no such member)."""
    if not token:
        return None
    for owner in dict.fromkeys(owners[s] for s in subscriptions if s in owners):
        if verify_token(secret, community, owner, token):
            return owner
    return None


def _same_keys(member: Member, request: JoinRequest) -> bool:
    """Whether the request repeats the member's stored web push keys (compared in constant time)."""
    if member.web_push is None or request.web_push is None:
        return False
    stored, given = member.web_push.keys, request.web_push.keys
    try:  # as bytes: one key written with or without base64 padding is the same key
        same_auth = hmac.compare_digest(b64url_bytes(stored.auth), b64url_bytes(given.auth))
        same_key = hmac.compare_digest(b64url_bytes(stored.p256dh), b64url_bytes(given.p256dh))
    except ValueError:
        return False
    return same_auth and same_key


def _existing_id(community: str) -> None:
    """CommunityNotFound for an id no upload can create (:mod:`herald.content.ids`): no membership
    of it can exist, so none is looked up, written or counted."""
    if not is_community_id(community):
        raise CommunityNotFound(community)


#: Races (a concurrent join of the same subscription, a leave during a repeat join) are decided
#: again on fresh reads, this many times at most.
ATTEMPTS = 8


@dataclass
class MembershipService:
    """``policy`` is the push endpoint policy a join's web push endpoint must meet; ``resolve``
    (``host, port -> addresses``) checks where its host resolves to at join time (None: not)."""

    store: MemberStore
    devices: DeviceRegistry
    secret: TokenSecret
    clock: Callable[[], datetime]
    random_below: Callable[[int], int]
    random_bytes: Callable[[int], bytes]
    shards: int = 32
    policy: EndpointPolicy = field(default_factory=EndpointPolicy)
    resolve: Callable[[str, int], list[str]] | None = None

    # -- join ------------------------------------------------------------------------------------

    def join(self, community: str, request: JoinRequest, token: str | None = None) -> JoinResult:
        """A new member, or the member who holds one of the request's subscriptions, refreshed
        (new keys, new subscriptions claimed, preferences given), if the request proves it is
        that member: ``token`` is the member's bearer token, or the request repeats the stored
        web push keys exactly (the ``auth`` secret is known only to the browser and to Herald:
        a retry whose answer was lost gets its member and token back).

        Anything else raises :class:`AlreadyJoined` and changes nothing (no id, no token, the
        stored keys kept): knowing someone's push endpoint or device token gains nothing.
        """
        _existing_id(community)
        check_endpoint_allowed(request, self.policy, self.resolve)
        secret = self.secret()
        endpoint_arn: str | None = None
        registered = False
        subscriptions = request.subscriptions()
        for attempt in range(ATTEMPTS):
            # Most joins are first joins: try to create at once, read the claims only when one exists.
            owners = self.store.claims(community, subscriptions) if attempt else {}
            now = self.clock()
            if owners:
                owner = _token_holder(secret, community, owners, subscriptions, token)
                proven = owner is not None
                if owner is None and request.web_push is not None:
                    owner = owners.get(subscription_id(web_push=request.web_push))
                if owner is None:
                    raise AlreadyJoined("this subscription already belongs to a member")
                existing = self.store.member(community, owner)
                if existing is None:
                    continue  # left meanwhile: its claims are going too
                if not proven and not _same_keys(existing, request):
                    raise AlreadyJoined("this subscription already belongs to a member")
                if not registered:
                    endpoint_arn, registered = self._register(request), True
                member_token = derive_token(secret, community, owner)
                updated, new_claims = self._refreshed(
                    existing, request, owners, endpoint_arn, member_token, now
                )
                try:
                    self.store.refresh(updated, new_claims)
                except ConcurrentUpdate:
                    continue
                return JoinResult(updated, member_token, created=False)
            if not registered:
                endpoint_arn, registered = self._register(request), True
            member_id = new_member_id(self.random_bytes)
            member_token = derive_token(secret, community, member_id)
            member = Member(
                community=community,
                member_id=member_id,
                shard=choose_shard(self.shards, self.random_below),
                token_hash=token_hash(member_token),
                subscriptions=subscriptions,
                web_push=request.web_push,
                device=request.device,
                endpoint_arn=endpoint_arn,
                preferences=Preferences(**request.preferences()),
                joined_at=now,
                updated_at=now,
            )
            try:
                self.store.create(member)
            except ConcurrentUpdate:
                continue  # a subscription was claimed meanwhile (or a shard was busy): read again
            return JoinResult(member, member_token, created=True)
        raise TransientError(f"joining {community}: still contended after {ATTEMPTS} attempts")

    def _register(self, request: JoinRequest) -> str | None:
        if request.device is None:
            return None
        return self.devices.register(request.device.platform, request.device.token)

    @staticmethod
    def _refreshed(
        member: Member,
        request: JoinRequest,
        owners: dict[str, str],
        endpoint_arn: str | None,
        token: str,
        now: datetime,
    ) -> tuple[Member, list[str]]:
        """The member after a repeat join: new web push keys or device endpoint, new subscriptions
        claimed (never one that another member holds), preferences changed only where given."""
        mine = member.member_id
        changes: dict[str, object] = {"token_hash": token_hash(token), "updated_at": now}
        new_claims: list[str] = []
        if request.web_push is not None:
            sid = subscription_id(web_push=request.web_push)
            if owners.get(sid, mine) == mine:
                changes["web_push"] = request.web_push
                if sid not in owners:
                    new_claims.append(sid)
        if request.device is not None:
            sid = subscription_id(device=request.device)
            if owners.get(sid, mine) == mine:
                changes["device"] = request.device
                changes["endpoint_arn"] = endpoint_arn
                if sid not in owners:
                    new_claims.append(sid)
        changes["subscriptions"] = list(dict.fromkeys([*member.subscriptions, *new_claims]))
        given = request.preferences()
        if given:
            changes["preferences"] = member.preferences.model_copy(update=given)
        return member.model_copy(update=changes), new_claims

    # -- preferences and leaving -----------------------------------------------------------------

    def authorize(self, community: str, member_id: str, token: str | None) -> str:
        """The token's hash if it opens this membership; MissingToken or Forbidden otherwise.

        Decided by the token alone (constant time, no read), so the answer is the same whether or
        not the member exists.
        """
        _existing_id(community)
        if not token:
            raise MissingToken("a bearer token is required")
        import re

        valid_id = re.fullmatch(MEMBER_ID, member_id) is not None
        ok = verify_token(self.secret(), community, member_id if valid_id else "0" * 32, token)
        if not (ok and valid_id):
            raise Forbidden("the token does not open this membership")
        return token_hash(token)

    def update_preferences(
        self, community: str, member_id: str, token: str | None, patch: PreferencesPatch
    ) -> Preferences:
        expected = self.authorize(community, member_id, token)
        for _ in range(ATTEMPTS):
            member = self.store.member(community, member_id)
            if member is None or member.token_hash != expected:
                raise MemberGone("this membership was left")
            updated = member.model_copy(
                update={"preferences": patch.apply(member.preferences), "updated_at": self.clock()}
            )
            if self.store.save_preferences(updated, expected):
                return updated.preferences
        raise TransientError(f"updating member {hashed(member_id)}: still contended after {ATTEMPTS} tries")

    def leave(self, community: str, member_id: str, token: str | None) -> bool:
        """True if this call ended the membership; False if it had ended already (still a success)."""
        expected = self.authorize(community, member_id, token)
        # A device's platform endpoint stays: the same token has the same endpoint in every
        # community the device joined. Endpoints that stop working are dropped by the fan-out.
        for _ in range(ATTEMPTS):
            try:
                return self.store.remove(community, member_id, expected) is not None
            except ConcurrentUpdate:
                continue  # a busy counter shard: try again
        raise TransientError(f"leaving {community}: still contended after {ATTEMPTS} attempts")
