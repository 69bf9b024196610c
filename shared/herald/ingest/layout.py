"""The upload bucket's layout: which keys are posts, which are exports, and the ids they map to.

- ``posts/<community>/<name>.<ext>``: one post, in the upload format of its extension
  (:mod:`herald.content.formats`: ``txt``, ``md``, ``json``);
- ``posts/<community>/<name>.<lang>.<ext>``: the ``<lang>`` language variant of the post
  ``posts/<community>/<name>.<ext>`` (any upload format for either; ``<lang>`` an ISO 639-1 code,
  optionally with a subtag: ``fr``, ``pt-br``);
- ``communities/<community>.json``: the community's settings (default language, machine translations);
- ``exports/<community>/<name>.txt``: a community page export (many posts and a profile), in a
  format that takes exports (plain text);
- ``rejected/...``: Herald's own copies of rejected uploads, never ingested again.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from herald.content import formats
from herald.content import limits as bounds
from herald.content.ids import is_community_id
from herald.content.languages import LOOKS_LIKE_CODE, is_known_language
from herald.content.limits import REJECTED_PREFIX
from herald.core.errors import InvalidUpload

# Only these two prefixes notify (template.yaml's filters, which are case-sensitive): an object
# under any other prefix, ``Posts/`` included, never reaches ingest and has no outcome.
POSTS_PREFIX = "posts/"
EXPORTS_PREFIX = "exports/"
SETTINGS_PREFIX = "communities/"
#: Prefixes Herald writes itself; an event for one of them is ignored, never processed.
INTERNAL_PREFIXES = (REJECTED_PREFIX,)


MAX_KEY_BYTES = bounds.KEY_BYTES


class UploadKind(StrEnum):
    POST = "post"
    VARIANT = "variant"
    EXPORT = "export"
    SETTINGS = "settings"


@dataclass(frozen=True, slots=True)
class UploadKey:
    """A key of the uploads bucket that follows the layout."""

    key: str
    kind: UploadKind
    community: str
    name: str
    fmt: str
    #: The language of a variant (kind VARIANT), None otherwise.
    lang: str | None = None

    @property
    def post_id(self) -> str:
        """The id of the single post this key holds (kind POST)."""
        return derive_post_id(self.community, self.key)

    @property
    def stem(self) -> str:
        """``posts/<community>/<name>``: the key without its extension (and, for a variant,
        without its language): what an original and its variants share."""
        base = self.name.rpartition(".")[0]
        if self.lang is not None:
            base = base.rpartition(".")[0]
        return f"{POSTS_PREFIX}{self.community}/{base}"

    @property
    def stem_id(self) -> str:
        """An id derived from the stem: where the variants of a post not stored yet wait. It is no
        post's id (a post's id is derived from a key with an extension)."""
        return derive_post_id(self.community, self.stem)

    def original_keys(self) -> tuple[str, ...]:
        """The keys the original of this variant may have, one per post format."""
        return tuple(f"{self.stem}.{ext}" for ext in formats.post_extensions())

    def original_ids(self) -> dict[str, str]:
        """The post id each of :meth:`original_keys` would have (key -> id)."""
        return {key: derive_post_id(self.community, key) for key in self.original_keys()}

    def export_post_id(self, content_hash: str) -> str:
        """The id of one post of an export: stable for the same text in the same export."""
        return derive_post_id(self.community, f"{self.key}#{content_hash}")


def derive_post_id(community: str, source: str) -> str:
    """A short, URL-safe id derived from the community and where the post came from."""
    digest = hashlib.sha256(f"{community}\x00{source}".encode()).hexdigest()
    return digest[:20]


def is_internal(key: str) -> bool:
    return key.startswith(INTERNAL_PREFIXES)


def parse_key(key: str) -> UploadKey:
    """Map a (decoded) S3 key onto the layout, or say precisely why it does not fit."""
    bounds.check_key(key)
    # The upload formats' extensions (herald.content.formats): any for a post, those that take
    # exports for an export.
    if key.startswith(SETTINGS_PREFIX):
        return _parse_settings_key(key)
    if key.startswith(POSTS_PREFIX):
        kind, allowed = UploadKind.POST, formats.post_extensions()
    elif key.startswith(EXPORTS_PREFIX):
        kind, allowed = UploadKind.EXPORT, formats.export_extensions()
    else:
        raise InvalidUpload.one(
            "key",
            f"{bounds.quoted(key)} is outside the layout: "
            "uploads go under posts/<community>/ or exports/<community>/ (settings: "
            "communities/<community>.json)",
        )
    parts = key.split("/")
    if len(parts) != 3 or not parts[2]:
        raise InvalidUpload.one(
            "key",
            f"{bounds.quoted(key)} does not have the form "
            f"{parts[0]}/<community>/<name>.<{'|'.join(allowed)}>",
        )
    _, community, name = parts
    if not is_community_id(community):
        raise InvalidUpload.one(
            "key",
            f"community {bounds.quoted(community)} is not a valid id: "
            "use lowercase letters, digits and hyphens (1-64), nothing else (no spaces, line ends "
            "or control characters)",
        )
    control = next((ch for ch in name if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        raise InvalidUpload.one(
            "key", f"the file name {bounds.quoted(name)} contains a control character (U+{ord(control):04X})"
        )
    stem, dot, ext = name.rpartition(".")
    ext = ext.lower()
    if not dot or not stem or ext not in allowed:
        raise InvalidUpload.one(
            "key",
            f"{bounds.quoted(name)} has an unsupported extension: "
            f"expected one of {', '.join('.' + f for f in allowed)}",
        )
    lang = _variant_language(key, stem) if kind is UploadKind.POST else None
    if lang is not None:
        kind = UploadKind.VARIANT
    return UploadKey(key=key, kind=kind, community=community, name=name, fmt=ext, lang=lang)


def _variant_language(key: str, stem: str) -> str | None:
    """The language a post key names (``<name>.<lang>.<ext>``), None for an original.

    A middle part that is not 2-3 letters (with an optional subtag) is part of an ordinary name
    (``report.v2.txt``, ``notes.2024.md``); one that is but names no known language is refused,
    so a misspelt variant never becomes a post of its own.
    """
    base, dot, middle = stem.rpartition(".")
    if not dot or not base or LOOKS_LIKE_CODE.fullmatch(middle) is None:
        return None
    if middle != middle.lower():
        raise InvalidUpload.one(
            "key",
            f"language code {bounds.quoted(middle)} in {bounds.quoted(key)} must be lowercase: "
            f"{bounds.quoted(middle.lower())}",
        )
    if not is_known_language(middle):
        raise InvalidUpload.one(
            "key",
            f"unknown language code {bounds.quoted(middle)} in {bounds.quoted(key)}: a variant is "
            "posts/<community>/<name>.<lang>.<ext> with an ISO 639-1 code (fr, ar, pt-br)",
        )
    return middle


def _parse_settings_key(key: str) -> UploadKey:
    parts = key.split("/")
    name = parts[1] if len(parts) == 2 else ""
    community, dot, ext = name.rpartition(".")
    if not dot or ext != "json":
        raise InvalidUpload.one(
            "key", f"{bounds.quoted(key)} does not have the form {SETTINGS_PREFIX}<community>.json"
        )
    if not is_community_id(community):
        raise InvalidUpload.one(
            "key",
            f"community {bounds.quoted(community)} is not a valid id: "
            "use lowercase letters, digits and hyphens (1-64), nothing else",
        )
    return UploadKey(key=key, kind=UploadKind.SETTINGS, community=community, name=name, fmt="json")
