"""Markdown to plain text, for enrichment of Markdown posts: the Markdown upload format's own
(:mod:`herald.content.formats.markdown`), named here for callers that read it as enrichment's."""

from __future__ import annotations

from herald.content.formats.markdown import to_plain

__all__ = ["to_plain"]
