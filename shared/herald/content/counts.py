"""A community's member count: how it is computed and how it is shown, for the API, the site and
the report alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel import Locale

__all__ = ["compact_number", "exact_number", "member_count"]

DEFAULT_LOCALE = "en"


def member_count(baseline: int, joined: int | Iterable[int]) -> int:
    """Members shown: the export's baseline plus joins minus leaves (``joined``: the member store's
    count, or its counter shards' values), never below 0."""
    change = joined if isinstance(joined, int) else sum(int(n) for n in joined)
    return max(0, int(baseline) + int(change))


def compact_number(value: int, locale: str | Locale = DEFAULT_LOCALE) -> str:
    """``222000`` -> ``222K`` (en), ``222 k`` (fr), ``222 ألف`` (ar): CLDR's short compact form."""
    from babel.numbers import format_compact_decimal

    return str(format_compact_decimal(value, format_type="short", locale=locale, fraction_digits=1))


def exact_number(value: int, locale: str | Locale = DEFAULT_LOCALE) -> str:
    """``222000`` -> ``222,000`` (en), ``222 000`` (fr): every digit, grouped as the locale does."""
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=locale))
