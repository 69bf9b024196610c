"""The upload formats, one module each, registered by file extension.

Each module listed in :data:`MODULES` holds a :class:`~herald.content.formats.base.Format` named
``FORMAT``: how a post in it is parsed, the plain text enrichment reads and the HTML of its page.
The layout (which keys are posts), the parser, enrichment and the site look formats up here; a new
format is a new module and its name in :data:`MODULES`. The order is the one editors are told
(``expected one of .txt, .md, .json``).
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from herald.content.formats.base import Format

#: The format modules of this package, in the order their extensions are listed to editors.
MODULES: tuple[str, ...] = ("text", "markdown", "json")
#: The format of a stored post whose format no module claims (and of posts stored before formats).
PLAIN = "txt"

__all__ = ["MODULES", "PLAIN", "Format", "export_extensions", "find", "of", "post_extensions", "registry"]


@cache
def registry() -> dict[str, Format]:
    """Every format by its extension, in the order of :data:`MODULES`."""
    formats: dict[str, Format] = {}
    for name in MODULES:
        fmt: Format = import_module(f"{__name__}.{name}").FORMAT
        if fmt.extension in formats:
            raise ValueError(f"two upload formats claim the extension .{fmt.extension}")
        formats[fmt.extension] = fmt
    return formats


def find(extension: str) -> Format | None:
    """The format of an upload's extension (lowercase, without the dot), or None if there is none."""
    return registry().get(extension)


def of(name: str) -> Format:
    """The format of a stored post (``Post.format``): a name no format claims reads as plain text."""
    formats = registry()
    return formats.get(name) or formats[PLAIN]


def post_extensions() -> tuple[str, ...]:
    """The extensions a single post may be uploaded with."""
    return tuple(registry())


def export_extensions() -> tuple[str, ...]:
    """The extensions a community page export may be uploaded with."""
    return tuple(ext for ext, fmt in registry().items() if fmt.exports)
