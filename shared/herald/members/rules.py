"""Members of a community: who joined, how to reach them, what they want, and the rules.

Pure: no AWS, no environment, no clock or randomness of its own (both are handed in).

* A member joins with a web push subscription and/or a mobile device. Each of those is a
  *subscription*, identified by :func:`subscription_id` (sha256 of the endpoint, or of
  ``platform:token``). A subscription belongs to at most one member of a community, so joining
  again with it is the same member: nothing is counted twice.
* The member's token is ``HMAC-SHA256(secret, community, member_id)`` (base64url): the same on every
  repeat join, never stored (only its sha256 is), verified in constant time.
* Counting is spread over ``shards`` counter items; a member is counted on one shard, chosen at
  random when joining and kept, so leaving takes the count back from the same shard (the member
  counter does, from the members table's stream: :mod:`herald.members.counting`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from herald.content.languages import iso_639_1
from herald.core.errors import HeraldError
from herald.enrichment.topics import taxonomy
from herald.members.endpoints import (
    EndpointPolicy,
    EndpointUnresolvable,
    UnsafeEndpoint,
    check_endpoint,
    normalise_endpoint,
)

MAX_LANGUAGES = 20
MAX_TOPICS = 50
MAX_ENDPOINT_CHARS = 2048
MAX_DEVICE_TOKEN_CHARS = 4096
MEMBER_ID = r"^[0-9a-f]{32}$"


# ----------------------------------------------------------------------------- errors


class MemberError(HeraldError):
    """Base of the membership errors; the API maps each to one HTTP status."""


class CommunityNotFound(MemberError):
    def __init__(self, community: str) -> None:
        super().__init__(f"community not found: {community}")
        self.community = community


class MissingToken(MemberError):
    """No token was presented."""


class Forbidden(MemberError):
    """The token does not open this membership (or the membership does not exist: same answer)."""


class AlreadyJoined(MemberError):
    """A join with a subscription that belongs to a member, without that member's token."""


class MemberGone(MemberError):
    """A valid token, but the membership was left already."""


@dataclass
class InvalidRequest(MemberError):
    """A request that is well formed but breaks a rule; ``loc`` names the field."""

    loc: tuple[str | int, ...]
    message: str
    kind: str = "value_error"

    def __post_init__(self) -> None:
        super().__init__(f"{'.'.join(str(p) for p in self.loc)}: {self.message}")


class PushNotConfigured(InvalidRequest):
    """Mobile push for a platform has no platform application."""


# ----------------------------------------------------------------------------- validators


def _b64url_decode(value: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+=*", value):
        raise ValueError("must be base64url")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64url") from exc


def b64url_bytes(value: str) -> bytes:
    """The bytes of base64url text, padded or not; ValueError if it is not base64url."""
    return _b64url_decode(value)


def _p256dh(value: str) -> str:
    raw = _b64url_decode(value)
    if len(raw) != 65 or raw[0] != 0x04:
        raise ValueError("must be an uncompressed P-256 public key: 65 bytes starting with 0x04, base64url")
    return value


def _p256dh_point(value: str) -> str:
    """A new subscription's key must be a point on P-256 (what encrypting to it needs), not just 65 bytes."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(value))
    except ValueError as exc:
        raise ValueError("must be a point on the P-256 curve (an uncompressed key, base64url)") from exc
    return value


def _auth(value: str) -> str:
    if len(_b64url_decode(value)) != 16:
        raise ValueError("must be 16 bytes, base64url")
    return value


def _endpoint(value: str) -> str:
    """Stored endpoints only need to parse as http(s) URLs; which ones a join may use is the push
    endpoint policy's (:func:`herald.members.endpoints.check_endpoint`), applied by the join."""
    try:
        if normalise_endpoint(value).startswith("http:"):
            # Plain http is only ever for a loopback push service (the local cloud's).
            check_endpoint(value, EndpointPolicy(allow_loopback=True))
    except UnsafeEndpoint as exc:
        raise ValueError(str(exc)) from exc
    return value


def _language(value: str) -> str:
    if value not in iso_639_1():
        raise ValueError(f"{value!r} is not an ISO 639-1 language code")
    return value


@cache
def topic_ids() -> frozenset[str]:
    return frozenset(t.id for t in taxonomy())


def _topic(value: str) -> str:
    if value not in topic_ids():
        raise ValueError(f"{value!r} is not a topic (see the taxonomy)")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", value) or value.startswith("/"):
        raise ValueError(f"{value!r} is not an IANA time zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$"), AfterValidator(_language)]
TopicId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64), AfterValidator(_topic)
]
Languages = Annotated[list[Language], Field(max_length=MAX_LANGUAGES), AfterValidator(_unique)]
Topics = Annotated[list[TopicId], Field(max_length=MAX_TOPICS), AfterValidator(_unique)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_timezone)]


# ----------------------------------------------------------------------------- models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebPushKeys(_Strict):
    p256dh: Annotated[str, StringConstraints(min_length=80, max_length=100), AfterValidator(_p256dh)]
    auth: Annotated[str, StringConstraints(min_length=16, max_length=32), AfterValidator(_auth)]


class WebPushSubscription(_Strict):
    """A browser's Push API subscription (``PushSubscription.toJSON()`` without expirationTime)."""

    endpoint: Annotated[
        str, StringConstraints(min_length=8, max_length=MAX_ENDPOINT_CHARS), AfterValidator(_endpoint)
    ]
    keys: WebPushKeys


class NewWebPushKeys(WebPushKeys):
    """The keys of a joining subscription: ``p256dh`` checked on the curve as well.

    Only joins check the curve: a member stored before the check still loads (the sender prunes a
    subscription it cannot encrypt to).
    """

    p256dh: Annotated[
        str,
        StringConstraints(min_length=80, max_length=100),
        AfterValidator(_p256dh),
        AfterValidator(_p256dh_point),
    ]


class NewWebPushSubscription(WebPushSubscription):
    """The web push subscription of a join."""

    keys: NewWebPushKeys


class Device(_Strict):
    """A mobile app's push token: FCM registration token or APNs device token."""

    platform: Literal["fcm", "apns"]
    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:\-.]{8,4096}$")]


class QuietHours(_Strict):
    """No notifications between ``start`` and ``end`` (local time of ``timezone``; may span midnight)."""

    start: ClockTime
    end: ClockTime
    timezone: TimeZone

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def contains(self, local_time: str) -> bool:
        """Whether ``HH:MM`` (in the member's zone) falls inside the quiet hours."""
        if self.start < self.end:
            return self.start <= local_time < self.end
        return local_time >= self.start or local_time < self.end


# A new preference is a field of Preferences and of PreferencesPatch (and of JoinRequest when a join
# may give it), read by the fan-out's ``wants``; the membership service takes a join's preferences
# from JoinRequest.preferences, whatever they are.


class Preferences(_Strict):
    languages: Languages = Field(default_factory=list)
    topics: Topics = Field(default_factory=list)
    muted: bool = False
    quiet_hours: QuietHours | None = None


class JoinRequest(_Strict):
    """``POST /communities/{id}/members``: how to reach the member, and what they want."""

    web_push: NewWebPushSubscription | None = None
    device: Device | None = None
    languages: Languages = Field(default_factory=list)
    topics: Topics = Field(default_factory=list)

    @model_validator(mode="after")
    def _reachable(self) -> JoinRequest:
        if self.web_push is None and self.device is None:
            raise ValueError("give web_push or device (or both)")
        return self

    def subscriptions(self) -> list[str]:
        ids = []
        if self.web_push is not None:
            ids.append(subscription_id(web_push=self.web_push))
        if self.device is not None:
            ids.append(subscription_id(device=self.device))
        return ids

    def preferences(self) -> dict[str, Any]:
        """The join's fields that are :class:`Preferences` fields, those given (an empty or false
        value gives none): a new member starts with them, a repeat join changes only them."""
        fields = (name for name in type(self).model_fields if name in Preferences.model_fields)
        return {name: value for name in fields if (value := getattr(self, name))}


class PreferencesPatch(_Strict):
    """``PATCH``: only the fields given change; ``quiet_hours: null`` removes them."""

    languages: Languages | None = None
    topics: Topics | None = None
    muted: bool | None = None
    quiet_hours: QuietHours | None = None

    def apply(self, current: Preferences) -> Preferences:
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None and name != "quiet_hours":
                continue
            changes[name] = value
        return current.model_copy(update=changes)


class Member(BaseModel):
    """A member as stored."""

    model_config = ConfigDict(frozen=True)

    community: str
    member_id: str
    shard: int
    token_hash: str
    subscriptions: list[str]
    web_push: WebPushSubscription | None = None
    device: Device | None = None
    endpoint_arn: str | None = None
    preferences: Preferences = Field(default_factory=Preferences)
    joined_at: datetime
    updated_at: datetime


# ----------------------------------------------------------------------------- rules


def subscription_id(*, web_push: WebPushSubscription | None = None, device: Device | None = None) -> str:
    """sha256 of what identifies a subscription: the normalised push endpoint
    (:func:`herald.members.endpoints.normalise_endpoint`), or ``platform:token``.

    One endpoint written with another case of its host, its default port, a fragment or a trailing
    slash is the same subscription. Web push keys are not part of it: a browser that renews its
    keys keeps its endpoint, and is the same member.
    """
    if web_push is not None:
        identity = f"webpush:{normalise_endpoint(web_push.endpoint)}"
    elif device is not None:
        identity = f"{device.platform}:{device.token}"
    else:
        raise ValueError("a subscription is a web push subscription or a device")
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def derive_token(secret: bytes, community: str, member_id: str) -> str:
    """The member's secret: HMAC-SHA256 over community and member id, base64url without padding."""
    message = f"{community}\x00{member_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    """What is stored of a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def verify_token(secret: bytes, community: str, member_id: str, presented: str | None) -> bool:
    """Constant time in the token; says nothing about whether the member exists."""
    expected = derive_token(secret, community, member_id)
    return hmac.compare_digest(expected.encode(), (presented or "").encode("utf-8", "surrogatepass"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None if absent or another scheme)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def choose_shard(shards: int, random_below: Callable[[int], int]) -> int:
    """The counter shard a new member is counted on, uniformly at random."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    shard = random_below(shards)
    if not 0 <= shard < shards:
        raise ValueError(f"random_below({shards}) gave {shard}")
    return shard


def new_member_id(random_bytes: Callable[[int], bytes]) -> str:
    return random_bytes(16).hex()


def check_endpoint_allowed(
    request: JoinRequest, policy: EndpointPolicy, resolve: Callable[[str, int], list[str]] | None = None
) -> None:
    """The join's web push endpoint under the push endpoint policy; InvalidRequest on the endpoint if not.

    A host that does not resolve at all is let through (DNS may be failing for a moment; the
    sender checks the addresses again before every request); one that resolves to an address
    that is not public is refused.
    """
    if request.web_push is None:
        return
    try:
        check_endpoint(request.web_push.endpoint, policy, resolve=resolve)
    except EndpointUnresolvable:
        return
    except UnsafeEndpoint as exc:
        raise InvalidRequest(("body", "web_push", "endpoint"), str(exc)) from exc


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class JoinResult:
    member: Member
    token: str
    created: bool  # False: a repeat join of an existing member (answered 200, not 201)
