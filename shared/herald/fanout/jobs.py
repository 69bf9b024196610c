"""The fan-out's messages: what the planner queue and the push job queue carry, as pydantic models.

Two queues, four kinds of job (the ``kind`` key):

* the **planner queue**: ``release`` (:class:`ReleaseJob`, sent by the publisher once the post's page
  is written: the fan-out starts), ``post`` (:class:`PostJob`, a post still waiting for its
  ``publish_at``) and ``shard`` (:class:`ShardJob`, one page of one member shard);
* the **push job queue**: ``push`` (:class:`PushJob`, a post and up to ``members_per_job``
  :class:`Target`\\ s).

The JSON on the wire is the one Herald has always sent (a job in flight when a new version is
deployed is read by it): a push job's members keep their one-letter keys (``m``, ``c``, ``s``, ``w``,
``a``, field aliases here), optional keys are left out as before. Each model's JSON Schema is in
``docs/contracts/`` (:mod:`herald.fanout.contracts` writes it). Pure: pydantic only.

**Validated at the edges.** A job is validated where it comes in: read from its queue (the handlers'
``BatchProcessor(model=...)``), or built from a caller's values. What the planner builds from members
it has read (validated) already is not validated again: a channel makes a member's targets with
:meth:`Target.trusted`, and a job goes on the queue as the JSON text pydantic writes in one pass
(:meth:`_Message.as_json`, the same bytes as ``json.dumps`` of :meth:`_Message.as_dict`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic.json_schema import SkipJsonSchema

#: The version every job carries (``v``). Readers accept any: a change of shape gets a new kind.
JOB_VERSION = 1


def _none(value: Any) -> bool:
    return value is None


def _false(value: Any) -> bool:
    return value is False


def _empty(value: Any) -> bool:
    return not value


@dataclass(frozen=True)
class VariantText:
    """What a notification shows of one language variant of a post: its title, excerpt and page."""

    title: str
    excerpt: str
    url: str


@dataclass(frozen=True)
class PostSummary:
    """What a fan-out needs of a post: who it is for (language, topics) and what the notification shows.

    ``variants``: the post's pushable language variants (lang -> :class:`VariantText`), each carried
    once per job; the original's language is ``language`` and is not among them. ``push_machine``: the
    community pushes machine translations (else none is among ``variants``). ``follow_up``: this
    fan-out is the follow-up of a variant that came after the first push, for that language only, to
    members who matched none of ``pushed`` (the languages pushed before). All four are left out of the
    JSON when unset, so a post without variants is the JSON it always was.
    """

    community: str
    post_id: str
    title: str
    excerpt: str
    url: str
    language: str | None = None
    topics: tuple[str, ...] = ()
    publish_at: float | None = None  # epoch seconds; None: now
    started_at: float | None = None  # when the fan-out was planned (FanOutDuration counts from it)
    correlation_id: str | None = None  # the upload's, so the planner's and senders' logs carry it
    variants: Annotated[dict[str, VariantText], Field(exclude_if=_empty)] = field(default_factory=dict)
    push_machine: Annotated[bool, Field(exclude_if=_false)] = False
    follow_up: Annotated[str | None, Field(exclude_if=_none)] = None
    pushed: Annotated[tuple[str, ...], Field(exclude_if=_empty)] = ()

    def in_language(self, lang: str | None) -> PostSummary:
        """The post as a member reading ``lang`` is shown it: that variant's title, excerpt, page and
        language (None, or a language the post has no variant in: the original)."""
        text = self.variants.get(lang) if lang is not None else None
        if text is None:
            return self
        return replace(self, title=text.title, excerpt=text.excerpt, url=text.url, language=lang)

    def only(self, langs: frozenset[str] | set[str]) -> PostSummary:
        """The post with only the variants in ``langs`` (a push job carries the texts its members read)."""
        if all(lang in langs for lang in self.variants):
            return self
        return replace(self, variants={k: v for k, v in self.variants.items() if k in langs})


def _same_in_json(value: float | None) -> bool:
    """Whether pydantic writes the value as ``json.dumps`` does: None, 0, or finite and at least 1e-4."""
    return value is None or value == 0 or 1e-4 <= abs(value) < math.inf


#: The instance slots pydantic's ``model_construct`` fills (:meth:`Target.trusted` fills them as it does).
_MODEL_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


class _Message(BaseModel):
    """A message of a fan-out queue: validated when read, written by its aliases."""

    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    def as_dict(self) -> dict[str, Any]:
        """The message as JSON-ready values (what a :class:`herald.fanout.service.JobQueue` sends)."""
        return self.model_dump(mode="json")

    def as_json(self) -> str:
        """The message's body on the queue: ``json.dumps(self.as_dict(), ensure_ascii=False,
        separators=(",", ":"))``, byte for byte, written by pydantic in one pass (no dict between).

        pydantic writes every value as ``json.dumps`` does but a float below 1e-4 (``1e-05`` is
        ``0.00001`` to it) and inf or nan (``null``); a message carrying one is written by
        ``json.dumps`` (Herald's floats are epoch seconds: never, in practice; a member's ``w`` holds
        its subscription's strings)."""
        if all(_same_in_json(value) for value in self._floats()):
            return self.model_dump_json()
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))

    def _floats(self) -> tuple[float | None, ...]:
        """The message's floats (what :meth:`as_json` looks at)."""
        post = getattr(self, "post", None)
        return () if post is None else (post.publish_at, post.started_at)


class Target(_Message):
    """One member on one channel, and not before when (epoch seconds; None: now).

    ``channel`` is the kind of target a channel sends (``web``; ``fcm``, ``apns``: see
    :mod:`herald.fanout.channels`); the channel's address of the member is ``web_push`` (a browser's
    subscription) or ``address`` (one string: a device's SNS endpoint ARN). ``not_before`` is the
    job's: it is not written per member.
    """

    member_id: str = Field(alias="m", title="member_id")
    channel: str = Field(
        alias="c", title="channel", description="the target's kind: web, fcm, apns", min_length=1
    )
    subscription: str = Field(alias="s", title="subscription", description="the subscription id")
    web_push: dict[str, Any] | None = Field(
        default=None,
        alias="w",
        title="web_push",
        description="the browser's push subscription",
        exclude_if=_none,
    )
    address: str | None = Field(
        default=None,
        alias="a",
        title="address",
        description="the device's SNS endpoint ARN",
        exclude_if=_none,
    )
    lang: str | None = Field(
        default=None,
        alias="l",
        title="lang",
        description="the language the member is pushed, when not the post's original",
        exclude_if=_none,
    )
    not_before: SkipJsonSchema[float | None] = Field(default=None, exclude=True)

    @classmethod
    def trusted(
        cls,
        member_id: str,
        channel: str,
        subscription: str,
        *,
        web_push: dict[str, Any] | None = None,
        address: str | None = None,
        not_before: float | None = None,
        lang: str | None = None,
    ) -> Target:
        """A target from values Herald has validated already (a member as read from its table, a
        channel's own kind): not validated again. The instance ``model_construct`` makes, without
        its per-field alias lookups, which take longer than validating (about 4.8 µs a target
        against 1.8 µs; this, 0.5 µs). The planner makes one per member and channel."""
        values: dict[str, Any] = {
            "member_id": member_id,
            "channel": channel,
            "subscription": subscription,
            "web_push": web_push,
            "address": address,
            "lang": lang,
            "not_before": not_before,
        }
        if BaseModel.__slots__ != _MODEL_SLOTS:  # another pydantic: its own way
            return cls.model_construct(**values)
        target = object.__new__(cls)
        object.__setattr__(target, "__dict__", values)
        object.__setattr__(target, "__pydantic_fields_set__", set(values))
        object.__setattr__(target, "__pydantic_extra__", None)
        object.__setattr__(target, "__pydantic_private__", None)
        return target

    def in_language(self, lang: str | None) -> Target:
        """The same target, pushed ``lang`` (None: the post's original)."""
        if lang == self.lang:
            return self
        values = {**self.__dict__, "lang": lang}
        return Target.trusted(
            values["member_id"],
            values["channel"],
            values["subscription"],
            web_push=values["web_push"],
            address=values["address"],
            not_before=values["not_before"],
            lang=lang,
        )


class PushJob(_Message):
    """One message of the push job queue: a post and up to ``members_per_job`` targets, due at
    ``not_before`` (quiet hours: the sender sends it back to wait until then); ``deferred_recorded``
    once the deferral is counted."""

    v: int = JOB_VERSION
    kind: Literal["push"] = "push"
    job_id: str = Field(alias="job", title="job_id")
    post: PostSummary
    attempt: int = Field(default=1, ge=1)
    targets: tuple[Target, ...] = Field(alias="members", title="targets")
    not_before: float | None = Field(default=None, exclude_if=_none)
    deferred_recorded: bool = Field(default=False, exclude_if=_false)

    @model_validator(mode="after")
    def _members_wait_with_the_job(self) -> PushJob:
        # On the wire the job carries ``not_before`` once; each of its members waits for it.
        when = self.not_before
        if any(t.not_before != when for t in self.targets):
            moved = tuple(t.model_copy(update={"not_before": when}) for t in self.targets)
            object.__setattr__(self, "targets", moved)
        return self

    def _floats(self) -> tuple[float | None, ...]:
        return (*super()._floats(), self.not_before)

    @classmethod
    def from_dict(cls, data: Any) -> PushJob:
        """The job from its JSON values (raises pydantic's ``ValidationError`` naming the field)."""
        return cls.model_validate(data)


class ReleaseJob(_Message):
    """The planner's message that starts a post's fan-out (the publisher's, once the page is written)."""

    v: int = JOB_VERSION
    kind: Literal["release"] = "release"
    post: PostSummary


class PostJob(_Message):
    """The planner's message for a post whose time has not come yet (it waits in hops of the
    longest SQS delay)."""

    v: int = JOB_VERSION
    kind: Literal["post"] = "post"
    post: PostSummary


class ShardJob(_Message):
    """The planner's message for one page of one member shard (``after``: the last member id of the
    page before; None: the first page)."""

    v: int = JOB_VERSION
    kind: Literal["shard"] = "shard"
    post: PostSummary
    shard: int = Field(ge=0)
    after: str | None = None


#: Any message of the planner queue, told apart by its ``kind``.
PlannerJob = Annotated[ReleaseJob | PostJob | ShardJob, Field(discriminator="kind")]
planner_jobs: TypeAdapter[ReleaseJob | PostJob | ShardJob] = TypeAdapter(PlannerJob)

#: The job models by contract name (``docs/contracts/<name>.schema.json``).
CONTRACTS: dict[str, type[_Message]] = {
    "release_job": ReleaseJob,
    "post_job": PostJob,
    "shard_job": ShardJob,
    "push_job": PushJob,
}

__all__ = [
    "CONTRACTS",
    "JOB_VERSION",
    "PlannerJob",
    "PostJob",
    "PostSummary",
    "PushJob",
    "ReleaseJob",
    "ShardJob",
    "Target",
    "VariantText",
    "planner_jobs",
]
