"""Language codes an upload may name: ISO 639-1 (two letters, known to pycountry), optionally with
a region or script subtag (``pt-br``, ``zh-hant``)."""

from __future__ import annotations

import re
from functools import cache

#: What looks like a language code in a key (``<name>.<x>.<ext>``): 2-3 letters, optionally a subtag.
LOOKS_LIKE_CODE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")


@cache
def _iso_639_1() -> frozenset[str]:
    import pycountry

    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def is_known_language(code: str) -> bool:
    """Whether ``code`` is a lowercase ISO 639-1 code, optionally with a lowercase subtag."""
    if code != code.lower() or LOOKS_LIKE_CODE.fullmatch(code) is None:
        return False
    return code.split("-", 1)[0] in _iso_639_1()


def primary(code: str) -> str:
    """The language without its subtag (``pt`` of ``pt-br``)."""
    return code.split("-", 1)[0]
