"""Which language of a post the API answers: ``?lang=`` first, else the request's
``Accept-Language`` (q-values), among the post's original language and its variants.

A range matches a language when they are equal (``pt-br``) or share their primary subtag (``fr-CA``
takes ``fr``; ``pt`` takes ``pt-br``); the first range, by q-value then order, that the post has
wins; none: the original. ``?lang=`` must be a language code (ISO 639-1, as pycountry knows it,
optionally with a region or script subtag): anything else is :class:`UnsupportedLanguage` (400).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from herald.api.locale import _ranges
from herald.content.languages import iso_639_1
from herald.content.models import Post, VariantOrigin

_CODE = re.compile(r"^([a-z]{2})(-[a-z0-9]{2,8})*$")


class UnsupportedLanguage(ValueError):
    """A ``?lang=`` that is not a language code."""

    def __init__(self, value: str) -> None:
        shown = value if len(value) <= 40 else value[:40] + "…"
        super().__init__(
            f"unsupported language {shown!r}: lang takes an ISO 639-1 code, optionally with a "
            "region or script subtag (fr, pt-br, zh-hant)"
        )
        self.value = shown


@lru_cache(maxsize=512)
def parse_lang(value: str) -> str:
    """``value`` as a variant key writes it (lower case, ``-``), or :class:`UnsupportedLanguage`."""
    code = value.strip().replace("_", "-").lower()
    match = _CODE.match(code)
    if match is None or match.group(1) not in iso_639_1():
        raise UnsupportedLanguage(value)
    return code


def _primary(code: str) -> str:
    return code.split("-", 1)[0]


def choose(post: Post, lang: str | None, accept_language: str | None) -> str | None:
    """The variant to answer (its language), or None for the original."""
    if lang is not None:
        return _pick(post, [lang])
    if accept_language:
        return _pick(post, [r.replace("_", "-").lower() for r in _ranges(accept_language)])
    return None


def _pick(post: Post, ranges: Sequence[str]) -> str | None:
    original = (post.language or "").lower()
    for wanted in ranges:
        for candidate in (original, *sorted(post.variants)):
            if candidate and candidate == wanted:
                return candidate if candidate != original else None
        for candidate in (original, *sorted(post.variants)):
            if candidate and _primary(candidate) == _primary(wanted):
                return candidate if candidate != original else None
    return None


def is_machine(post: Post, lang: str | None) -> bool:
    summary = post.variants.get(lang) if lang else None
    return summary is not None and summary.origin == VariantOrigin.MACHINE
