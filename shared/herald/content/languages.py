"""The language codes Herald knows: ISO 639-1 (two letters, as pycountry knows them), written in
lowercase, optionally with a region or script subtag (``pt-br``, ``zh-hant``).

One list for every part that checks a code: the upload layout (a variant's key), the ingest's
``translations``, the community settings and the members' language preferences.
"""

from __future__ import annotations

import re
from functools import cache

#: What looks like a language code in a key (``<name>.<x>.<ext>``): 2-3 letters, optionally a subtag.
LOOKS_LIKE_CODE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")


@cache
def iso_639_1() -> frozenset[str]:
    """Every ISO 639-1 code pycountry knows (``fr``, ``ar``…), read once (pycountry on first use)."""
    import pycountry

    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def is_known_language(code: str) -> bool:
    """Whether ``code`` is a lowercase ISO 639-1 code, optionally with a lowercase subtag."""
    if code != code.lower() or LOOKS_LIKE_CODE.fullmatch(code) is None:
        return False
    return primary(code) in iso_639_1()


def primary(code: str) -> str:
    """The language without its subtag (``pt`` of ``pt-br``)."""
    return code.split("-", 1)[0]
