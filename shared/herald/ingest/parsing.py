"""From uploaded bytes to validated input: decoding, then the post's format, or the export.

A single post is read by its upload format (:mod:`herald.content.formats`, looked up by the key's
extension); a community page export is read here. Every failure raises :class:`InvalidUpload`
with problems that name the field or the line, so an editor can fix the file without reading code.
Nothing here touches AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from herald.content import formats
from herald.content import limits as bounds
from herald.content.formats import markdown
from herald.content.formats.markdown import load_front_matter
from herald.content.limits import IngestLimits
from herald.content.models import CommunityProfile, PostInput
from herald.core.errors import InvalidUpload, Problem

__all__ = [
    "ExportedPost",
    "IngestLimits",
    "ParsedExport",
    "decode_text",
    "load_front_matter",
    "parse_export",
    "parse_member_count",
    "parse_post",
]

#: The Markdown format's front matter pattern, still named here for the linearity lint of the
#: patterns over user text (tests/unit/test_enrichment_linear.py), which reads this module.
_FRONT_MATTER = markdown.FRONT_MATTER


@dataclass(frozen=True, slots=True)
class ExportedPost:
    """One post of a community page export, with the line it starts on."""

    text: str
    line: int
    position: int


@dataclass(frozen=True, slots=True)
class ParsedExport:
    profile: CommunityProfile
    posts: list[ExportedPost] = field(default_factory=list)


# --- decoding -----------------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Office document)",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
}


_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
#: Bytes looked at to recognise UTF-16 or UTF-32 without a BOM.
_SNIFF_BYTES = 4096


def _wide_encoding(data: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the bytes are text in one of them (with or without a BOM).

    Without a BOM, NUL bytes give it away, which UTF-8 text never holds: in UTF-32 text every
    character has them; in UTF-16 text every ASCII character (spaces, digits, line ends) has one,
    always at the same parity, even offsets or odd. The first bytes must also decode to printable
    text in that encoding, so binary data with stray NULs is not taken for it.
    """
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return name
    head = data[:_SNIFF_BYTES]
    if b"\x00" not in head:
        return None
    quad = head[: len(head) // 4 * 4]
    if any(_printable(quad, codec) for codec in ("utf-32-le", "utf-32-be")):
        return "UTF-32"
    pair = head[: len(head) // 2 * 2]
    even, odd = pair[0::2].count(0), pair[1::2].count(0)
    units = len(pair) // 2
    one_sided = units and min(even, odd) <= units // 100 and max(even, odd) >= max(2, units // 10)
    if one_sided and any(_printable(pair, codec) for codec in ("utf-16-le", "utf-16-be")):
        return "UTF-16"
    return None


def _printable(data: bytes, codec: str) -> bool:
    try:
        # The sniffed bytes may end inside a surrogate pair: a lone half at the end is fine.
        text = data.decode(codec, errors="replace")
    except UnicodeDecodeError:
        return False
    text = text[:-1] if text.endswith("\ufffd") else text
    return bool(text) and "\ufffd" not in text and all(ch.isprintable() or ch in "\t\n\r" for ch in text)


def decode_text(data: bytes, *, limit: int, what: str) -> str:
    """Bytes to str: size-checked, strict UTF-8 (a BOM is allowed), not binary, not empty.

    ``data`` may be only the first ``limit + 1`` bytes of the object (the ingest service checks
    the object's real size before reading it, when the event gives it).
    """
    if len(data) > limit:
        # limit + 1 bytes is what a ranged read returns of a larger object: say no more than we know.
        size = f"at least {len(data):,}" if len(data) == limit + 1 else f"{len(data):,}"
        raise InvalidUpload.one("size", f"the {what} is {size} bytes; the limit is {limit:,} bytes")
    wide = _wide_encoding(data)
    if wide is not None:
        raise InvalidUpload.one("content", f"{wide} is not supported, save as UTF-8")
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise InvalidUpload.one("content", f"this is binary data ({kind}), not UTF-8 text")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InvalidUpload.one("content", f"binary data: a NUL byte at offset {nul}; expected UTF-8 text")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidUpload.one(
            f"line {line}",
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})",
        ) from None
    if not text.strip():
        raise InvalidUpload.one("content", f"the {what} is empty")
    return text


# --- single posts -------------------------------------------------------------------------------


def parse_post(data: bytes, fmt: str, limits: IngestLimits) -> PostInput:
    """Parse one post in the upload format ``fmt`` (an extension: ``txt``, ``md``, ``json``, …)."""
    text = decode_text(data, limit=limits.max_post_bytes, what="post")
    return formats.of(fmt).parse(text, limits)


# --- community page exports ---------------------------------------------------------------------

PROFILE_MARKER = "Scan QR code to join Community"
# The spaces before the unit belong to the unit: "\s*[KkMmBb]?\s+" backtracks quadratically on a long
# run of spaces, and an export's lines are user text.
_MEMBERS = re.compile(r"^(?P<num>\d[\d,]*(?:\.\d+)?)(?:\s*(?P<unit>[KkMmBb]))?\s+Members?$")
_CREATED = re.compile(r"^Created\s+In\s+(?P<year>\d{4})$", re.I)
_VERIFIED = re.compile(r"^Verified\s+Community$", re.I)
_UNITS = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_member_count(display: str, loc: str = "members") -> int:
    """'222K' -> 222000, '1.2M' -> 1200000, '950' -> 950, '12,345' -> 12345.

    Exact (decimal, not float) and bounded by :data:`herald.content.limits.MEMBERS`: a count
    beyond it raises InvalidUpload at ``loc``.
    """
    match = _MEMBERS.match(f"{display.strip()} Members")
    if not match:
        raise ValueError(f"not a member count: {bounds.quoted(display)}")
    digits = match["num"].replace(",", "")
    bounds.check_member_count(digits, loc)
    unit = (match["unit"] or "").lower()
    count = Decimal(digits) * _UNITS.get(unit, 1)
    return bounds.bounded_member_count(int(count.to_integral_value(ROUND_HALF_EVEN)), loc)


def parse_export(data: bytes, limits: IngestLimits) -> ParsedExport:
    """Parse a community page export: posts separated by blank lines, then the profile block."""
    text = decode_text(data, limit=limits.max_export_bytes, what="export")
    lines = text.splitlines()
    marker = next((i for i, line in enumerate(lines) if line.strip() == PROFILE_MARKER), None)
    if marker is None:
        raise InvalidUpload.one(
            "profile", f"no profile block: the export must end with a line {PROFILE_MARKER!r} and the profile"
        )
    posts = _split_posts(lines[:marker], limits)
    profile = _parse_profile(lines[marker + 1 :], first_line=marker + 2)
    return ParsedExport(profile=profile, posts=posts)


def _split_posts(lines: list[str], limits: IngestLimits) -> list[ExportedPost]:
    posts: list[ExportedPost] = []
    problems: list[Problem] = []
    block: list[str] = []
    start = 0

    def flush() -> None:
        if not block:
            return
        body = "\n".join(block).strip()
        size = len(body.encode())
        if size > limits.max_post_bytes:
            problems.append(
                Problem(
                    f"line {start}", f"this post is {size:,} bytes; the limit is {limits.max_post_bytes:,}"
                )
            )
        else:
            posts.append(ExportedPost(text=body, line=start, position=len(posts)))
        block.clear()

    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line.rstrip())
        else:
            flush()
    flush()
    if len(posts) > limits.max_export_posts:
        problems.append(
            Problem("posts", f"{len(posts):,} posts; an export may hold at most {limits.max_export_posts:,}")
        )
    if problems:
        raise InvalidUpload(problems)
    return posts


def _parse_profile(lines: list[str], *, first_line: int) -> CommunityProfile:
    entries = [
        (first_line + i, line.strip())
        for i, line in enumerate(lines)
        if line.strip() and line.strip() != PROFILE_MARKER
    ]
    if not entries:
        raise InvalidUpload.one(f"line {first_line}", "the profile block has no community name")
    (_, name), rest = entries[0], entries[1:]
    description: str | None = None
    verified = False
    members: int | None = None
    members_display: str | None = None
    created_year: int | None = None
    for number, line in rest:
        if _VERIFIED.match(line):
            verified = True
        elif m := _MEMBERS.match(line):
            members_display = line.rsplit(" ", 1)[0].strip()
            members = parse_member_count(members_display, loc=f"line {number}")
        elif m := _CREATED.match(line):
            created_year = int(m["year"])
            if not 1990 <= created_year <= 2100:
                raise InvalidUpload.one(
                    f"line {number}", f"'Created In {created_year}' is not a plausible year"
                )
        elif line.lower().endswith("members"):
            raise InvalidUpload.one(
                f"line {number}", f"cannot read a member count from {bounds.quoted(line)}"
            )
        elif description is None:
            if len(line) > bounds.COMMUNITY_DESCRIPTION_CHARS:
                raise InvalidUpload.one(
                    f"line {number}",
                    f"the description is {len(line):,} characters; "
                    f"the limit is {bounds.COMMUNITY_DESCRIPTION_CHARS:,}",
                )
            description = line
        else:
            raise InvalidUpload.one(
                f"line {number}", f"unexpected line in the profile block: {bounds.quoted(line)}"
            )
    if len(name) > bounds.COMMUNITY_NAME_CHARS:
        raise InvalidUpload.one(
            f"line {first_line}",
            f"the community name is {len(name):,} characters; the limit is {bounds.COMMUNITY_NAME_CHARS:,}",
        )
    return CommunityProfile(
        name=name,
        description=description,
        verified=verified,
        members=members,
        members_display=members_display,
        created_year=created_year,
    )
