"""Herald's language codes (ISO 639-1, lowercase subtags: ``pt-br``, ``zh-hant``) as Amazon
Translate spells them (``pt``, ``zh-TW``)."""

from __future__ import annotations

#: Where Translate's code is not Herald's code, or not its primary subtag.
_SPECIAL = {
    "zh-hant": "zh-TW",
    "zh-tw": "zh-TW",
    "zh-hk": "zh-TW",
    "zh-hans": "zh",
    "zh-cn": "zh",
    "pt-pt": "pt-PT",
    "pt-br": "pt",
    "fr-ca": "fr-CA",
    "es-mx": "es-MX",
    "fa-af": "fa-AF",
    "prs": "fa-AF",
    "nb": "no",
    "fil": "tl",
}


def amazon_code(lang: str) -> str:
    """The code Amazon Translate takes for Herald's ``lang`` (its primary subtag unless Translate
    has the regional variant: ``pt-pt`` is ``pt-PT``, ``pt-br`` plain ``pt``, ``de-at`` ``de``)."""
    code = lang.strip().lower()
    return _SPECIAL.get(code) or code.split("-", 1)[0]


def same_language(a: str | None, b: str | None) -> bool:
    """Whether two of Herald's codes name what Translate treats as one language."""
    return a is not None and b is not None and amazon_code(a) == amazon_code(b)
