"""Markdown to plain text, for enrichment (titles, excerpts, counts) of Markdown posts."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # commonmark with raw HTML disabled: HTML in a post is text, never markup.
    return MarkdownIt("commonmark", {"html": False}).enable("strikethrough")


def to_plain(source: str) -> str:
    """The words of a Markdown document, block by block, without markup; link URLs are kept."""
    blocks: list[str] = []
    for token in _parser().parse(source):
        if token.type == "inline" and token.children is not None:
            parts: list[str] = []
            href: str | None = None
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append("\n")
                elif child.type == "link_open":
                    href = str(child.attrs.get("href", ""))
                elif child.type == "link_close" and href:
                    parts.append(f" ({href})")
                    href = None
                elif child.type == "image":
                    parts.append(child.content)
            blocks.append("".join(parts))
        elif token.type in ("code_block", "fence"):
            blocks.append(token.content.rstrip("\n"))
    return "\n\n".join(block for block in blocks if block.strip())
