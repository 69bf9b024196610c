"""What machine translation needs from the world: a translator, and the content table's variants.

Adapters implement these (:mod:`herald.translation.adapters`); the service
(:mod:`herald.translation.service`) knows nothing of boto3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from herald.content.models import Variant
from herald.core.errors import HeraldError

#: The source language to give when the original's language is not known: the translator detects it.
AUTO = "auto"


class TranslationRefused(HeraldError):
    """The translator refused this text for good (a language pair it does not support, a source
    language it could not tell, a text over its size limit): retrying gives the same answer, so it
    is recorded and no variant is made. ``code``: the translator's own error code."""

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Translator(Protocol):
    """Translates plain text (paragraphs kept: separated by blank lines)."""

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        """``text`` in ``target_lang``; ``source_lang`` may be :data:`AUTO`.

        Raises :class:`TranslationRefused` (permanent) or
        :class:`~herald.core.errors.TransientError` (to retry)."""
        ...


@dataclass(frozen=True, slots=True)
class CommunitySettings:
    """What machine translation reads of a community's settings (the PROFILE item's ``settings``)."""

    #: Languages to fill in by machine, in the order the editors listed them (lowercase codes).
    machine_translations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TranslationFailure:
    """A translation the translator refused: no variant, and not asked again for the same text.

    Stored next to the post (``MTFAIL#<post id>#<lang>``) until the original's text changes."""

    community: str
    post_id: str
    lang: str
    #: The original's content_hash the refusal was for: a new text is tried again.
    source_hash: str
    code: str
    message: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class StoredTranslations:
    """What is stored for one post: its variants (human and machine) and the refusals."""

    variants: Mapping[str, Variant] = field(default_factory=dict)
    failures: Mapping[str, TranslationFailure] = field(default_factory=dict)


class VariantStore(Protocol):
    """The content table as machine translation reads and writes it."""

    def settings(self, community: str) -> CommunitySettings:
        """The community's settings (the defaults when it has none, or no profile)."""
        ...

    def stored(self, community: str, post_id: str) -> StoredTranslations:
        """The post's variants and recorded refusals, read consistently."""
        ...

    def put_machine_variant(self, variant: Variant) -> bool:
        """Store a machine variant and its summary on the post, in one transaction; False (nothing
        written) when a human variant of that language is there, or when the post is gone or has
        another text than ``variant.source_hash`` by now."""
        ...

    def record_failure(self, failure: TranslationFailure) -> None:
        """Remember a refusal, so that the same text is not sent again."""
        ...
