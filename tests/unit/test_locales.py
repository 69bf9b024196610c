"""The locales Herald ships (herald.core.locales): the site's languages, refused clearly otherwise."""

from __future__ import annotations

import pytest

from herald.api.locale import negotiate
from herald.core import locales
from herald.site import render
from herald.site.render import SiteRenderer

BASE = "https://site.example/harbour-line/"


def test_the_shipped_languages_are_the_sites() -> None:
    assert set(locales.LANGUAGES) == set(render._STRINGS)


@pytest.mark.parametrize(
    ("locale", "lang"), [("fr_CA", "fr-CA"), ("es-MX", "es-MX"), ("en", "en"), ("ar", "ar")]
)
def test_any_region_of_a_shipped_language_renders(locale: str, lang: str) -> None:
    assert SiteRenderer(BASE, locale=locale).lang == lang


@pytest.mark.parametrize("locale", ["de", "pt_BR", "zh-Hant-TW", "xx"])
def test_a_locale_not_shipped_is_refused_with_its_name(locale: str) -> None:
    with pytest.raises(locales.UnsupportedLocale) as refused:
        SiteRenderer(BASE, locale=locale)
    assert repr(locale) in str(refused.value)
    assert "en, fr, es, ar" in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_accept_language_skips_what_is_not_shipped() -> None:
    assert negotiate("de-DE, de;q=0.9, es-MX;q=0.5") == "es_MX"
    assert negotiate("pt-BR, ja") == "en"
    assert negotiate("fr-CA") == "fr_CA"


def test_language_of() -> None:
    assert locales.language_of("fr-CA") == "fr"
    assert locales.language_of("FR_ca") == "fr"
    assert locales.language_of("zh_Hant_TW") == "zh"
    assert locales.shipped("es_419") and not locales.shipped("de")
