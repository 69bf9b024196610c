"""The request's locale (Accept-Language); numbers are shown in it by :mod:`herald.content.counts`."""

from __future__ import annotations

from functools import lru_cache

from herald.core import locales

DEFAULT_LOCALE = "en"
MAX_HEADER_CHARS = 512


def _ranges(header: str) -> list[str]:
    """Language ranges of an Accept-Language header, best first (ties keep their order)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:MAX_HEADER_CHARS].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            weighted.append((-q, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


@lru_cache(maxsize=256)
def negotiate(accept_language: str | None) -> str:
    """The first locale of the header that babel knows and HeraldLayer ships (a language of
    :data:`herald.core.locales.LANGUAGES`), as ``ll`` or ``ll_RR``; ``en`` otherwise."""
    if not accept_language:
        return DEFAULT_LOCALE
    from babel import Locale, UnknownLocaleError

    for tag in _ranges(accept_language):
        if not locales.shipped(tag):
            continue
        try:
            locale = Locale.parse(tag.replace("_", "-"), sep="-")
        except (UnknownLocaleError, ValueError, TypeError):
            continue
        return str(locale)
    return DEFAULT_LOCALE
