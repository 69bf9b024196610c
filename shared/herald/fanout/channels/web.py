"""The Web Push channel: a member's browser subscription, the post's notification, one push per target.

The notification is encoded once per job (:mod:`herald.fanout.channels.payload`) and sent with
``TTL`` (the sender's), ``Urgency: normal`` and ``Topic`` = the post id, so a repeat replaces the
message a push service still holds. The sender (:class:`herald.fanout.channels.webpush.WebPushSender`:
VAPID signer, token cache, connection pool) is made on the first push and kept as long as the channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from herald.core.runtime import Lazy
from herald.fanout.channels import Localized
from herald.fanout.channels.payload import Notification, encode
from herald.fanout.delivery import DeliveryResult, Outcome, push_service
from herald.fanout.jobs import PostSummary, Target
from herald.members.rules import Member, subscription_id

if TYPE_CHECKING:
    from herald.fanout.channels import Subscriptions
    from herald.fanout.channels.webpush import WebPushSender

KIND = "web"


class WebPusher(Protocol):
    """Sends one encrypted Web Push message (:class:`herald.fanout.channels.webpush.WebPushSender`)."""

    def send(
        self, subscription: Any, payload: bytes, *, topic: str | None, urgency: Any = ...
    ) -> DeliveryResult: ...


def notification(post: PostSummary) -> bytes:
    """The post's notification as the service worker reads it, within one push message."""
    return encode(
        Notification(
            title=post.title or post.community,
            body=post.excerpt,
            url=post.url or "/",
            post_id=post.post_id,
            community=post.community,
            tag=f"post-{post.post_id}",
            lang=post.language,
        )
    )


@dataclass
class WebPushChannel:
    """Implements :class:`herald.fanout.channels.Channel` for browsers; ``sender`` gives the sender
    (called on each push: make it once)."""

    sender: Callable[[], WebPusher]
    kinds: tuple[str, ...] = (KIND,)

    @property
    def bound_s(self) -> float:
        """The sender's default per-request deadline (connect to last byte)."""
        from herald.fanout.channels.webpush import DEFAULT_DEADLINE_S

        return DEFAULT_DEADLINE_S

    def targets(self, member: Member, post: PostSummary, not_before: float | None) -> list[Target]:
        if member.web_push is None:
            return []
        # The member was validated as it was read: its target is not validated again.
        return [
            Target.trusted(
                member.member_id,
                KIND,
                subscription_id(web_push=member.web_push),
                web_push=member.web_push.model_dump(mode="json"),
                not_before=not_before,
            )
        ]

    def message(self, post: PostSummary) -> bytes:
        return notification(post)

    def send(self, target: Target, post: PostSummary, message: Any) -> DeliveryResult:
        if target.web_push is None:
            return DeliveryResult(Outcome.PRUNE, detail="no web push subscription")
        return self.sender().send(target.web_push, message, topic=post.post_id, urgency="normal")

    def sends_many(self) -> bool:
        """Whether the sender keeps many pushes going at once on one thread (``send_many``)."""
        return callable(getattr(self.sender(), "send_many", None))

    def send_many(
        self,
        targets: Sequence[Target],
        post: PostSummary,
        message: Any,
        *,
        in_flight: int,
        may_start: Callable[[], bool],
    ) -> list[DeliveryResult | None]:
        """Each target pushed, up to ``in_flight`` at once on this thread (``WebPushSender.send_many``):
        ``may_start()`` is asked before each push; once it says no, no more start (None)."""
        sender: Any = self.sender()  # a WebPushSender: ``prepare`` and ``send_many`` (sends_many)
        # A post with variants: one notification per language (``Localized``), each made once per job.
        pick = message.get if isinstance(message, Localized) else (lambda _lang: message)

        def start(i: int) -> Any:
            if not may_start():
                return None
            web_push = targets[i].web_push
            if web_push is None:
                return DeliveryResult(Outcome.PRUNE, detail="no web push subscription")
            # The Topic is the post's for every language: a variant replaces the original's message.
            return sender.prepare(web_push, pick(targets[i].lang), topic=post.post_id, urgency="normal")

        results: list[DeliveryResult | None] = sender.send_many(len(targets), start, in_flight=in_flight)
        return results

    def service(self, target: Target) -> str:
        endpoint = (target.web_push or {}).get("endpoint")
        return push_service(endpoint) if isinstance(endpoint, str) else "other"

    def prune(self, community: str, target: Target, members: Subscriptions) -> bool:
        return members.prune_subscription(community, target.member_id, target.subscription)


def sender_from_env(environ: Mapping[str, str]) -> WebPushSender:
    """The sender of a container: the VAPID key read once (SSM), the subject and TTL from the settings,
    the same endpoint policy as at join (checked again on the addresses resolved at each push), and
    as many keep-alive connections per push service as the sender has pushes in flight at once (most
    members of a community share one push service: fewer would open a TLS connection per push)."""
    from herald.fanout.adapters.vapid_keys import VapidKeySource
    from herald.fanout.channels.vapid import VapidSigner
    from herald.fanout.channels.webpush import WebPushSender
    from herald.fanout.settings import SenderSettings

    settings = SenderSettings.from_env(environ)
    key = VapidKeySource(settings.vapid_key_parameter)
    return WebPushSender(
        VapidSigner(key(), settings.vapid_subject),
        ttl=settings.push_ttl_seconds,
        policy=settings.endpoint_policy,
        max_connections_per_host=settings.in_flight,
    )


def channel(environ: Mapping[str, str]) -> WebPushChannel:
    """The registry's factory: the sender is made from ``environ`` on the first push."""
    return WebPushChannel(Lazy(lambda: sender_from_env(environ)))
