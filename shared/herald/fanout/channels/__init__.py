"""Channels: the ways a post reaches a member (Web Push to a browser, SNS mobile push to an app).

A channel is one module implementing the :class:`Channel` port, registered by name in
:data:`REGISTRY`: the planner asks each channel for a member's targets, the sender hands each target
to the channel of its kind (``c`` on the wire: ``web``; ``fcm``, ``apns``), and neither knows a
channel by name.

* :mod:`herald.fanout.channels.web`: Web Push. :mod:`~herald.fanout.channels.payload` (the
  notification, always within one push message), :mod:`~herald.fanout.channels.vapid` (the key and
  the per-origin token cache), :mod:`~herald.fanout.channels.webpush` (the sender: aes128gcm, pooled
  connections, a deadline per request).
* :mod:`herald.fanout.channels.mobile`: SNS mobile push (FCM and APNs platform applications): the
  channel and its message; :mod:`~herald.fanout.channels.sns_mobile`: the bounded ``Publish``, and the
  channel's factory.

Importing a channel module loads nothing heavy: each makes its sender (``cryptography``, its HTTP client,
``botocore``, the VAPID key) on its first push, so the planner, which only asks for targets, does not
load them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from herald.core.settings import environment
from herald.fanout.delivery import DeliveryResult, Outcome
from herald.fanout.jobs import PostSummary, Target
from herald.members.rules import Member

#: Every channel, by name: the module whose ``channel(environ)`` makes it. The order is the order of
#: a member's targets. A new channel is a module (with its sender) and a line here.
REGISTRY: dict[str, str] = {
    "web": "herald.fanout.channels.web",
    "mobile": "herald.fanout.channels.sns_mobile",
}

#: The metrics label of a target no channel of this sender serves.
UNKNOWN_SERVICE = "other"


class Subscriptions(Protocol):
    """Where a member's subscriptions are kept (:class:`herald.fanout.service.MemberDirectory`)."""

    def prune_subscription(self, community: str, member_id: str, subscription: str) -> bool: ...


class Channel(Protocol):
    """One way of reaching members: their targets for a post, one target's push, a dead subscription's end.

    ``kinds``: the target kinds it sends (``c`` on the wire). ``bound_s``: the longest one push may take
    (the sender keeps that much of an invocation in hand before it claims a member). Every method but
    ``send`` is pure; ``send`` never raises for what the other end does: that is in its result.
    """

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def bound_s(self) -> float: ...

    def targets(self, member: Member, post: PostSummary, not_before: float | None) -> list[Target]:
        """The member's targets on this channel (one per subscription it has there), due at ``not_before``."""
        ...

    def message(self, post: PostSummary) -> Any:
        """What this channel sends for the post: made once per job, handed to each ``send``."""
        ...

    def send(self, target: Target, post: PostSummary, message: Any) -> DeliveryResult:
        """Push the post to one target; the outcome classified (:mod:`herald.fanout.delivery`)."""
        ...

    def service(self, target: Target) -> str:
        """The push service of the target, a label of low cardinality for metrics (never the address)."""
        ...

    def prune(self, community: str, target: Target, members: Subscriptions) -> bool:
        """The target's subscription is gone: remove it (from the member, and wherever else the
        channel keeps it). False if there was nothing to remove."""
        ...


class Localized:
    """One channel's messages for a post with variants, one per language its job's targets read,
    with the post as each language shows it (the original's under None): each made once per job."""

    __slots__ = ("_messages", "_posts")

    def __init__(self, post: PostSummary, messages: Mapping[str | None, Any]) -> None:
        self._messages = dict(messages)
        self._posts = {lang: post.in_language(lang) for lang in self._messages}
        self._posts.setdefault(None, post)

    def get(self, lang: str | None) -> Any:
        """The message of ``lang`` (the original's for a language it was not made for)."""
        return self._messages[lang] if lang in self._messages else self._messages.get(None)

    def post(self, lang: str | None) -> PostSummary:
        """The post in ``lang`` (its title, excerpt, page), the original for a language it has not."""
        return self._posts.get(lang) or self._posts[None]


class Channels:
    """The channels of a planner or a sender, found by target kind."""

    def __init__(self, channels: Iterable[Channel]) -> None:
        self.all: tuple[Channel, ...] = tuple(channels)
        self._by_kind: dict[str, Channel] = {}
        for channel in self.all:
            for kind in channel.kinds:
                if kind in self._by_kind:
                    raise ValueError(f"two channels send targets of kind {kind!r}")
                self._by_kind[kind] = channel

    def get(self, kind: str) -> Channel | None:
        return self._by_kind.get(kind)

    def targets(self, member: Member, post: PostSummary, not_before: float | None) -> list[Target]:
        """The member's targets on every channel, in the channels' order."""
        return [t for channel in self.all for t in channel.targets(member, post, not_before)]

    def messages(self, post: PostSummary, found: Sequence[Target]) -> dict[str, Any]:
        """Each channel's message for the post, by target kind, for the channels ``found`` needs;
        for a post with variants, by target kind a :class:`Localized` of one message per language
        the targets read (each made once for the job, never per member)."""
        langs = {t.lang for t in found} if post.variants else {None}
        made: dict[tuple[int, str | None], Any] = {}
        by_kind: dict[str, Any] = {}
        for kind in {t.channel for t in found}:
            channel = self._by_kind.get(kind)
            if channel is None:
                continue
            per_lang: dict[str | None, Any] = {}
            for lang in langs:
                key = (id(channel), lang)
                if key not in made:
                    made[key] = channel.message(post.in_language(lang))
                per_lang[lang] = made[key]
            by_kind[kind] = Localized(post, per_lang) if post.variants else per_lang[None]
        return by_kind

    def send(self, target: Target, post: PostSummary, messages: Mapping[str, Any]) -> DeliveryResult:
        channel = self._by_kind.get(target.channel)
        if channel is None:
            return DeliveryResult(Outcome.FAILED, detail=f"no channel sends {target.channel[:40]!r}")
        message = messages.get(target.channel)
        if isinstance(message, Localized):
            return channel.send(target, message.post(target.lang), message.get(target.lang))
        return channel.send(target, post, message)

    def service(self, target: Target) -> str:
        channel = self._by_kind.get(target.channel)
        return UNKNOWN_SERVICE if channel is None else channel.service(target)

    def prune(self, community: str, target: Target, members: Subscriptions) -> bool:
        channel = self._by_kind.get(target.channel)
        return False if channel is None else channel.prune(community, target, members)

    @property
    def bound_s(self) -> float:
        """The longest one push of any of these channels may take."""
        return max((c.bound_s for c in self.all), default=0.0)


def registered(environ: Mapping[str, str] | None = None, names: Iterable[str] | None = None) -> Channels:
    """The registered channels (or those ``names``), each made by its module's ``channel(environ)``.

    Nothing is read from ``environ`` (default: the process's, :func:`herald.core.settings.environment`)
    until a channel's first push."""
    env = environment(environ)
    chosen = list(REGISTRY) if names is None else list(names)
    return Channels(importlib.import_module(REGISTRY[name]).channel(env) for name in chosen)


__all__ = ["REGISTRY", "Channel", "Channels", "Localized", "Subscriptions", "registered"]
