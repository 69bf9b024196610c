"""The upload bucket's layout: which keys are posts, which are exports, and the ids they map to.

- ``posts/<community>/<name>.<ext>``: one post, in the upload format of its extension
  (:mod:`herald.content.formats`: ``txt``, ``md``, ``json``);
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
from herald.content.limits import REJECTED_PREFIX
from herald.core.errors import InvalidUpload

# Only these two prefixes notify (template.yaml's filters, which are case-sensitive): an object
# under any other prefix, ``Posts/`` included, never reaches ingest and has no outcome.
POSTS_PREFIX = "posts/"
EXPORTS_PREFIX = "exports/"
#: Prefixes Herald writes itself; an event for one of them is ignored, never processed.
INTERNAL_PREFIXES = (REJECTED_PREFIX,)


MAX_KEY_BYTES = bounds.KEY_BYTES


class UploadKind(StrEnum):
    POST = "post"
    EXPORT = "export"


@dataclass(frozen=True, slots=True)
class UploadKey:
    """A key of the uploads bucket that follows the layout."""

    key: str
    kind: UploadKind
    community: str
    name: str
    fmt: str

    @property
    def post_id(self) -> str:
        """The id of the single post this key holds (kind POST)."""
        return derive_post_id(self.community, self.key)

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
    if key.startswith(POSTS_PREFIX):
        kind, allowed = UploadKind.POST, formats.post_extensions()
    elif key.startswith(EXPORTS_PREFIX):
        kind, allowed = UploadKind.EXPORT, formats.export_extensions()
    else:
        raise InvalidUpload.one(
            "key",
            f"{bounds.quoted(key)} is outside the layout: "
            "uploads go under posts/<community>/ or exports/<community>/",
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
    return UploadKey(key=key, kind=kind, community=community, name=name, fmt=ext)
