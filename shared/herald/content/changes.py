"""What changed in the content table, as the features that follow its stream see it.

Each stream record of a post item or a community's profile item becomes one typed change
(:mod:`herald.content.adapters.dynamo_stream` makes them, in one place): a post added, a post
changed (its version before and after), a post removed (its last version), a community profile
changed (appeared, edited, counted or gone). Records of every other item of the table (upload
outcomes, duplicate claims, waiting duplicates, a key's ``PUB#``/``WAIT#``/``IMPORT`` items) are
no change of the content and become none. Past the adapter nothing sees a stream image.

An image the stream carried that is not a valid post (or profile) is :class:`Unreadable`, never
dropped: the site still has to take down a page whose old version it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.content.models import Community, Post


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A version of the item the stream carried (or should have) that is not one Herald can read:
    an item of another shape, or an image the record does not hold."""

    reason: str


PostVersion = Post | Unreadable
ProfileVersion = Community | Unreadable


@dataclass(frozen=True, slots=True, kw_only=True)
class PostAdded:
    """A post item was written where there was none (``INSERT``)."""

    event_id: str
    community: str
    post_id: str
    post: PostVersion
    #: When the change was written (the record's ApproximateCreationDateTime, epoch seconds).
    written_at: float | None = None

    @property
    def before(self) -> PostVersion | None:
        return None

    @property
    def after(self) -> PostVersion | None:
        return self.post


@dataclass(frozen=True, slots=True, kw_only=True)
class PostChanged:
    """A post item was rewritten (``MODIFY``): an edit, or a scheduled post's release marker set."""

    event_id: str
    community: str
    post_id: str
    old: PostVersion
    new: PostVersion
    #: The change set the post's release marker (``released_at``): its scheduled time has come.
    releases: bool = False
    written_at: float | None = None

    @property
    def before(self) -> PostVersion | None:
        return self.old

    @property
    def after(self) -> PostVersion | None:
        return self.new


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRemoved:
    """A post item was deleted (``REMOVE``); ``old`` is its last version."""

    event_id: str
    community: str
    post_id: str
    old: PostVersion
    written_at: float | None = None

    @property
    def before(self) -> PostVersion | None:
        return self.old

    @property
    def after(self) -> PostVersion | None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommunityProfileChanged:
    """A community's profile item was written or deleted: ``old`` None when it appeared, ``new``
    None when it went; both set for an edit of the profile or of its counters."""

    event_id: str
    community: str
    old: ProfileVersion | None
    new: ProfileVersion | None
    written_at: float | None = None


PostChange = PostAdded | PostChanged | PostRemoved
ContentChange = PostAdded | PostChanged | PostRemoved | CommunityProfileChanged
