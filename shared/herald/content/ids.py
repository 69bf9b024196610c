"""A community's id: one pattern for every feature.

Communities exist only through uploads (``posts/<community>/…``, ``exports/<community>/…``), so the
upload layout's rule is the truth: a slug of lowercase letters, digits and inner hyphens, at most
64 characters. It appears in URLs, S3 keys and DynamoDB keys. An id outside it names no community
that can exist: the API answers for it as for an unknown community.
"""

from __future__ import annotations

import re

__all__ = ["COMMUNITY_ID_PATTERN", "MAX_COMMUNITY_ID_CHARS", "is_community_id"]

#: Matched whole (``fullmatch``: ``$`` alone would let a trailing newline through).
COMMUNITY_ID_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
MAX_COMMUNITY_ID_CHARS = 64
_COMMUNITY_ID = re.compile(COMMUNITY_ID_PATTERN)


def is_community_id(value: object) -> bool:
    """Whether ``value`` is a community id, the whole of it."""
    return isinstance(value, str) and _COMMUNITY_ID.fullmatch(value) is not None
