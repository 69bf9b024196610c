"""The upload bucket's layout: which keys are posts, which are exports, and the ids they map to.

- ``posts/<community>/<name>.(txt|md|json)``: one post;
- ``exports/<community>/<name>.txt``: a community page export (many posts and a profile);
- ``rejected/...``: Herald's own copies of rejected uploads, never ingested again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from herald.domain.errors import InvalidUpload

POSTS_PREFIX = "posts/"
EXPORTS_PREFIX = "exports/"
REJECTED_PREFIX = "rejected/"
#: Prefixes Herald writes itself; an event for one of them is ignored, never processed.
INTERNAL_PREFIXES = (REJECTED_PREFIX,)

POST_FORMATS: tuple[str, ...] = ("txt", "md", "json")
EXPORT_FORMATS: tuple[str, ...] = ("txt",)

# A community id is a slug: it appears in URLs, keys and DynamoDB keys.
COMMUNITY_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_KEY_BYTES = 1024


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
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidUpload.one("key", f"the key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith(POSTS_PREFIX):
        kind, formats = UploadKind.POST, POST_FORMATS
    elif key.startswith(EXPORTS_PREFIX):
        kind, formats = UploadKind.EXPORT, EXPORT_FORMATS
    else:
        raise InvalidUpload.one(
            "key",
            f"{key!r} is outside the layout: uploads go under posts/<community>/ or exports/<community>/",
        )
    parts = key.split("/")
    if len(parts) != 3 or not parts[2]:
        raise InvalidUpload.one(
            "key", f"{key!r} does not have the form {parts[0]}/<community>/<name>.<{'|'.join(formats)}>"
        )
    _, community, name = parts
    if not COMMUNITY_ID.match(community):
        raise InvalidUpload.one(
            "key",
            f"community {community!r} is not a valid id: use lowercase letters, digits and hyphens (1-64)",
        )
    stem, dot, ext = name.rpartition(".")
    ext = ext.lower()
    if not dot or not stem or ext not in formats:
        raise InvalidUpload.one(
            "key",
            f"{name!r} has an unsupported extension: expected one of {', '.join('.' + f for f in formats)}",
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidUpload.one("key", "the file name contains control characters")
    return UploadKey(key=key, kind=kind, community=community, name=name, fmt=ext)
