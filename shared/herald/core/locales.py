"""The locales HeraldLayer ships: the site's languages, each with all of its regions.

The layer carries babel's data only for these languages (``fr``, ``fr_FR``, ``fr_CA``… and babel's
``root``), so what the tests see is what a function can do: a locale of another language is
refused here, in the venv and in Lambda alike, instead of failing deep in babel where its data is
missing. ``mk/build_layer.py`` reads :data:`LANGUAGES` to prune the layer. A new language: its
strings in ``herald.site.render._STRINGS`` and its code here.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "UnsupportedLocale", "language_of", "shipped"]

#: The site's languages (the keys of ``herald.site.render._STRINGS``), as babel names them.
LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "ar")


class UnsupportedLocale(ValueError):
    """A locale whose language HeraldLayer does not ship."""

    def __init__(self, locale: str) -> None:
        super().__init__(
            f"locale {locale!r} is not shipped: Herald renders {', '.join(LANGUAGES)} "
            "(any region of them, e.g. fr_CA); see herald.core.locales"
        )
        self.locale = locale


def language_of(locale: str) -> str:
    """``fr`` of ``fr_CA``, ``fr-CA`` or ``fr``; ``zh`` of ``zh_Hant_TW`` (lower case)."""
    return locale.replace("-", "_").split("_", 1)[0].strip().lower()


def shipped(locale: str) -> bool:
    """Whether ``locale``'s language is one of :data:`LANGUAGES`."""
    return language_of(locale) in LANGUAGES
