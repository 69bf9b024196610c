"""One list of known language codes (herald.content.languages) for the upload layout, the members'
preferences and the API's ``?lang=``: each takes exactly the codes it knows."""

from __future__ import annotations

import pycountry
import pytest
from pydantic import ValidationError

from herald.api.variants import UnsupportedLanguage, parse_lang
from herald.content.languages import is_known_language, iso_639_1
from herald.members.rules import Preferences

CODES = ["fr", "ar", "de", "es", "pt", "zh", "he", "xx", "qq", "zz", "en"]


def test_the_list_is_every_iso_639_1_code_pycountry_knows() -> None:
    assert iso_639_1() == {lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")}
    assert {"fr", "ar", "en", "zh"} <= iso_639_1() and not {"xx", "qq", "zz"} & iso_639_1()


@pytest.mark.parametrize("code", CODES)
def test_members_uploads_and_the_api_know_the_same_codes(code: str) -> None:
    known = is_known_language(code)
    try:
        Preferences(languages=[code])
        member_takes = True
    except ValidationError:
        member_takes = False
    try:
        api_takes = parse_lang(code) == code
    except UnsupportedLanguage:
        api_takes = False
    assert member_takes is known and api_takes is known
    assert is_known_language(f"{code}-br") is known
