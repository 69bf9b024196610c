"""The :class:`~herald.translation.ports.Translator` port on Amazon Translate (``TranslateText``).

TranslateText takes at most 10,000 bytes of UTF-8 a call: a longer text is cut into pieces at
paragraph boundaries (blank lines; a paragraph over the limit at line ends, then sentence ends,
then spaces), each piece is one call, and the answers are put back together with the separators
they were cut at. A text under the limit is one call.

Errors: throttling and the service's own failures are :class:`~herald.core.errors.TransientError`
(the stream gives the record again; botocore's standard retries come first); a refusal of the text
itself (a language pair Translate does not support, a source language it could not detect, a text
over its size limit, an invalid request) is :class:`~herald.translation.ports.TranslationRefused`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from herald.core.aws import LazyClient, as_domain_error, error_code
from herald.core.errors import RequestRefused, TransientError
from herald.translation.languages import amazon_code
from herald.translation.ports import AUTO, TranslationRefused

#: TranslateText's limit on a request's text, in bytes of UTF-8.
MAX_TEXT_BYTES = 10_000

#: Answers that may pass: retried.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerException",
        "InternalFailure",
    }
)
#: Answers about the text itself: the same text gets the same answer, so it is never retried.
REFUSED_CODES = frozenset(
    {
        "UnsupportedLanguagePairException",
        "DetectedLanguageLowConfidenceException",
        "TextSizeLimitExceededException",
        "TextSizeLimitExceeded",
        "InvalidRequestException",
        "ResourceNotFoundException",
        "ValidationException",
    }
)

#: Where a text too long for one call may be cut, best first.
_SEPARATORS = ("\n\n", "\n", ". ", " ")


class AmazonTranslator:
    """Amazon Translate's ``TranslateText``, one call per piece of at most ``max_bytes``."""

    client: LazyClient[Any] = LazyClient("translate")

    def __init__(self, client: Any = None, *, max_bytes: int = MAX_TEXT_BYTES) -> None:
        if client is not None:
            self.client = client
        self.max_bytes = max_bytes

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        source = AUTO if source_lang == AUTO else amazon_code(source_lang)
        target = amazon_code(target_lang)
        out: list[str] = []
        for piece, separator in pieces(text, self.max_bytes):
            out.append(self._call(piece, source, target) if piece.strip() else piece)
            out.append(separator)
        return "".join(out)

    def _call(self, text: str, source: str, target: str) -> str:
        what = f"translating {len(text.encode())} bytes from {source} to {target}"
        try:
            response = self.client.translate_text(
                Text=text, SourceLanguageCode=source, TargetLanguageCode=target
            )
        except ParamValidationError as exc:
            raise TranslationRefused(f"{what}: {exc}", code="ParamValidationError") from exc
        except ClientError as exc:
            code = error_code(exc)
            message = exc.response.get("Error", {}).get("Message", str(exc))
            if code in REFUSED_CODES:
                raise TranslationRefused(f"{what}: {code}: {message}", code=code) from exc
            if code in TRANSIENT_CODES:
                raise TransientError(f"{what}: {code}: {message}", code=code) from exc
            error = as_domain_error(exc, what)
            if isinstance(error, RequestRefused):
                raise TranslationRefused(str(error), code=error.code) from exc
            raise error from exc
        except BotoCoreError as exc:
            raise as_domain_error(exc, what) from exc
        return str(response["TranslatedText"])


def pieces(text: str, max_bytes: int) -> list[tuple[str, str]]:
    """``text`` cut into pieces of at most ``max_bytes`` (UTF-8), each with the separator that
    followed it: ``"".join(p + s for p, s in pieces(t, n)) == t``. As few pieces as fit, cut at
    the last paragraph boundary that fits (then line ends, sentence ends, spaces, characters)."""
    packed: list[tuple[str, str]] = []
    current: str | None = None
    after = ""
    for segment, separator in _segments(text, max_bytes, _SEPARATORS, ""):
        if current is not None and _size(current + after + segment) <= max_bytes:
            current, after = current + after + segment, separator
            continue
        if current is not None:
            packed.append((current, after))
        current, after = segment, separator
    if current is not None:
        packed.append((current, after))
    return packed


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _segments(text: str, limit: int, separators: tuple[str, ...], trailing: str) -> Iterator[tuple[str, str]]:
    if _size(text) <= limit:
        yield text, trailing
        return
    for index, separator in enumerate(separators):
        if separator in text:
            parts = text.split(separator)
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                yield from _segments(part, limit, separators[index + 1 :], trailing if last else separator)
            return
    yield from _cut(text, limit, trailing)


def _cut(text: str, limit: int, trailing: str) -> Iterator[tuple[str, str]]:
    """A text with no separator, cut at characters (never inside one)."""
    start, size = 0, 0
    for i, char in enumerate(text):
        width = len(char.encode("utf-8"))
        if size + width > limit:
            yield text[start:i], ""
            start, size = i, 0
        size += width
    yield text[start:], trailing
