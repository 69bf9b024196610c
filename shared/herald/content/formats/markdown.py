"""Markdown (``.md``): CommonMark with strikethrough, optional YAML front matter for the fields.

Raw HTML is off everywhere: HTML in a post is text, never markup. Enrichment reads the words of
the document without markup (link targets kept); the page shows it with links http/https/mailto
only, no images (no third-party requests) and headings from ``<h3>`` down. The Markdown source is
what is stored as the post's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from herald.content import limits as bounds
from herald.content.formats.base import LINK_REL, Format, safe_href, validate_fields
from herald.content.limits import IngestLimits
from herald.content.models import Link, PostInput
from herald.core.errors import InvalidUpload

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

#: Schemes a link in a Markdown post may have.
MARKDOWN_SCHEMES = frozenset({"http", "https", "mailto"})

# --- YAML front matter ------------------------------------------------------------------------

#: The front matter of a Markdown post: ``---`` on the first line, up to a line ``---`` or ``...``.
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


@cache
def _loader_class() -> type[Any]:
    """PyYAML's safe loader, without aliases (no billion laughs), with bounded nesting, refusing a
    duplicate key and any tag it has no constructor for (each as InvalidUpload, from the node).

    Made on first use, so what only renders or enriches posts never imports PyYAML.
    """
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):
        max_depth = 8

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise InvalidUpload.one(
                    f"front matter line {event.start_mark.line + 2}",
                    "YAML anchors and aliases (*name) are not allowed",
                )
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    mark = self.peek_event().start_mark
                    raise InvalidUpload.one(
                        f"front matter line {mark.line + 2}",
                        f"YAML nested more than {self.max_depth} levels deep",
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            """PyYAML keeps the last of two equal keys; Herald refuses the mapping, naming the key."""
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: PyYAML's own check reports it
                    continue
                if duplicate:
                    raise InvalidUpload.one(
                        f"front matter line {key_node.start_mark.line + 2}",
                        f"the field {bounds.quoted(str(key))} appears more than once",
                    )
            return super().construct_mapping(node, deep=deep)

        def construct_undefined(self, node: Any) -> Any:
            """A tag the safe loader has no constructor for (``!!python/object``, ``!x``): refused,
            named from the node itself (escaped as ``repr`` escapes it: a ``%0A`` in a tag is a
            line break), at the node's line."""
            raise InvalidUpload.one(
                f"front matter line {node.start_mark.line + 2}",
                f"unsafe or unknown YAML tag {repr(node.tag)[1:-1]}",
            )

    # PyYAML's table of constructors holds SafeConstructor's own function for an unknown tag, so
    # the override is registered on this class (its own copy of the table).
    BoundedSafeLoader.add_constructor(None, BoundedSafeLoader.construct_undefined)
    return BoundedSafeLoader


def load_front_matter(source: str, *, max_depth: int) -> dict[str, Any]:
    """Safely load a YAML mapping; line numbers in problems count the opening ``---`` as line 1."""
    import yaml

    loader = _loader_class()(source)
    loader.max_depth = max_depth
    try:
        document = loader.get_single_data()
    except InvalidUpload:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"front matter line {mark.line + 2}" if mark else "front matter"
        raise InvalidUpload.one(line, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidUpload.one("front matter", "the front matter must be a mapping of fields")
    return document


def parse(text: str, limits: IngestLimits) -> PostInput:
    """The front matter (if any) gives the fields, the body is the text."""
    fields: dict[str, Any] = {}
    body = text
    match = FRONT_MATTER.match(text)
    if match:
        source = match.group(1)
        size = len(source.encode())
        if size > limits.max_front_matter_bytes:
            raise InvalidUpload.one(
                "front matter",
                f"the front matter is {size:,} bytes; the limit is {limits.max_front_matter_bytes:,} bytes",
            )
        fields = load_front_matter(source, max_depth=limits.max_nesting)
        if "text" in fields:
            raise InvalidUpload.one(
                "text", "in a Markdown post the text is the body, not a front matter field"
            )
        body = text[match.end() :]
    elif text.startswith("---"):
        raise InvalidUpload.one("front matter", "front matter opened with '---' on line 1 is never closed")
    if not body.strip():
        raise InvalidUpload.one("text", "the Markdown body is empty")
    for name, value in list(fields.items()):
        if not isinstance(name, str):
            raise InvalidUpload.one("front matter", f"field names must be text, got {name!r}")
        if name == "tags" and isinstance(value, str):
            fields[name] = [value]
    return validate_fields({**fields, "text": body.strip()})


# --- plain text, for enrichment ---------------------------------------------------------------


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


# --- the page ---------------------------------------------------------------------------------


def _markdown_link_ok(url: str) -> bool:
    return safe_href(url, MARKDOWN_SCHEMES)


@cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": True})
    md.enable(["linkify", "strikethrough"]).disable("image")  # images: no third-party requests
    md.validateLink = _markdown_link_ok  # type: ignore[method-assign]
    return md


def markdown_html(source: str) -> Markup:
    """A Markdown post: raw HTML off, links http/https/mailto only, headings from ``<h3>`` down."""
    md = _markdown()
    tokens = md.parse(source)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
        elif token.type == "inline" and token.children:
            for child in token.children:
                if child.type != "link_open":
                    continue
                href = str(child.attrGet("href") or "")
                if child.markup == "linkify" and href.startswith("http://"):
                    text_token = token.children[token.children.index(child) + 1]
                    if not text_token.content.lower().startswith("http://"):
                        href = "https://" + href[7:]  # a scheme-less link, read as https like the enrichment
                if not _markdown_link_ok(href):
                    href = ""
                child.attrSet("href", href)
                child.attrSet("rel", LINK_REL)
    return Markup(md.renderer.render(tokens, md.options, {}))


def html(source: str, links: Sequence[Link]) -> Markup:
    """The page of a Markdown post: its links are the document's own (``links`` is not needed)."""
    return markdown_html(source)


FORMAT = Format(extension="md", parse=parse, plain_text=to_plain, html=html)
