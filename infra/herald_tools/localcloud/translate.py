"""A stand-in for Amazon Translate's ``TranslateText`` on the local cloud's endpoint (moto has none).

It is **not** a translator: it answers a clearly marked pseudo-translation, each paragraph that has
a letter in it prefixed with ``[machine translation to <target> — stand-in] `` (after any leading
Markdown block marker, so a heading stays a heading), and the rest as it came. What it does play
faithfully is the API around it, so that Herald's real boto3 client, its retries and its error
paths are exercised:

* the protocol botocore speaks to Translate: AWS JSON 1.1, ``POST /`` with
  ``X-Amz-Target: AWSShineFrontendService_20170701.TranslateText`` (any other operation of the
  service: ``UnknownOperationException``);
* every request validated against botocore's own service model of ``translate`` (required members,
  types, lengths: ``ValidationException`` naming what is wrong), and every answer too, before it
  is sent;
* Translate's answers: ``TranslatedText``, ``SourceLanguageCode``, ``TargetLanguageCode``; errors as
  ``{"__type", "message", ...}`` with the status the model gives each:
  ``TextSizeLimitExceededException`` over 10,000 bytes of UTF-8, ``UnsupportedLanguagePairException``
  for a code Translate does not know (``la``, ``xx``), ``DetectedLanguageLowConfidenceException`` for
  ``auto`` on a text without letters (``auto`` otherwise: ``ar`` for Arabic script, else ``en``),
  and ``ThrottlingException`` (400) when told to throttle.

Told to throttle: :meth:`TranslateStandIn.throttle` in process, ``POST /_herald/translate`` with
``{"throttle": N}`` over HTTP (N requests answered ``ThrottlingException``, ``-1`` every one until
told ``0``), or ``HERALD_LOCAL_TRANSLATE_THROTTLE=N`` in the local cloud's environment when it
starts. ``GET /_herald/translate`` answers ``{"calls": [...], "throttling": N}``: every
TranslateText request seen (source, target, bytes, answered status), for tests to count.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

TARGET_PREFIX = "AWSShineFrontendService_20170701."
ADMIN_PATH = "/_herald/translate"
THROTTLE_ENV = "HERALD_LOCAL_TRANSLATE_THROTTLE"
MAX_TEXT_BYTES = 10_000
CONTENT_TYPE = "application/x-amz-json-1.1"

#: The languages Amazon Translate supports, by its codes (the developer guide's list).
_LANGUAGE_LIST = """af sq am ar hy az bn bs bg ca zh zh-TW hr cs da fa-AF nl en et fa tl fi fr fr-CA ka de el
gu ht ha he hi hu is id ga it ja kn kk ko lv lt mk ms ml mt mr mn no ps pl pt pt-PT pa ro ru sr si sk sl
so es es-MX sw sv ta te th tr uk ur uz vi cy"""
LANGUAGES = frozenset(_LANGUAGE_LIST.split())
_MARKER_AFTER = re.compile(r"^([ \t]*(?:#{1,6}[ \t]+|>[ \t]*|[-*+][ \t]+|\d+[.)][ \t]+)*)")
_ARABIC = re.compile(r"[\u0600-\u06ff]")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@cache
def _model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("translate")


def pseudo_translation(text: str, target: str) -> str:
    """The stand-in's answer: each paragraph with a letter marked, the rest (symbols, blank lines) kept."""
    marker = f"[machine translation to {target} — stand-in] "
    paragraphs = text.split("\n\n")
    out = []
    for paragraph in paragraphs:
        if any(c.isalpha() for c in paragraph):
            lead = _MARKER_AFTER.match(paragraph)
            cut = lead.end() if lead else 0
            paragraph = paragraph[:cut] + marker + paragraph[cut:]
        out.append(paragraph)
    return "\n\n".join(out)


@dataclass(frozen=True, slots=True)
class Call:
    """One TranslateText request the stand-in answered."""

    source: str
    target: str
    bytes: int
    status: int
    error: str | None = None


class Refusal(Exception):
    def __init__(self, code: str, message: str, **members: str) -> None:
        super().__init__(message)
        self.code, self.message, self.members = code, message, members

    def status(self) -> int:
        if self.code in ("ValidationException", "UnknownOperationException", "SerializationException"):
            return 400
        if self.code == "ThrottlingException":
            return 400
        shape = _model().shape_for(self.code)
        return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))


class TranslateStandIn:
    """The stand-in (see the module's docstring); :meth:`wrap` puts it in front of moto's WSGI app."""

    def __init__(self, throttle: int | None = None) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        if throttle is None:
            throttle = int(os.environ.get(THROTTLE_ENV, "0") or 0)
        self._throttle = throttle

    # -- control -------------------------------------------------------------------------------

    def throttle(self, count: int) -> None:
        """Answer the next ``count`` requests ``ThrottlingException`` (-1: all of them; 0: none)."""
        with self._lock:
            self._throttle = count

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def forget_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- WSGI ----------------------------------------------------------------------------------

    def wrap(self, app: WSGIApp) -> WSGIApp:
        def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
                return self._api(environ, start_response)
            if environ.get("PATH_INFO") == ADMIN_PATH:
                return self._admin(environ, start_response)
            return app(environ, start_response)

        return dispatch

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                body = json.loads(_body(environ) or b"{}")
                self.throttle(int(body["throttle"]))
            except (ValueError, KeyError, TypeError) as exc:
                return _respond(start_response, 400, {"message": f'expected {{"throttle": N}}: {exc}'})
        with self._lock:
            state = {"calls": [asdict(c) for c in self._calls], "throttling": self._throttle}
        return _respond(start_response, 200, state, content_type="application/json")

    def _api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        operation = environ["HTTP_X_AMZ_TARGET"].removeprefix(TARGET_PREFIX)
        params: dict[str, Any] = {}
        try:
            if operation != "TranslateText":
                raise Refusal(
                    "UnknownOperationException", f"the stand-in serves TranslateText only, not {operation}"
                )
            try:
                params = json.loads(_body(environ) or b"{}")
            except ValueError as exc:
                raise Refusal("SerializationException", f"the body is not JSON: {exc}") from None
            answer = self._translate(params)
        except Refusal as refusal:
            self._record(params, refusal.status(), refusal.code)
            body = {"__type": refusal.code, "message": refusal.message, **refusal.members}
            return _respond(start_response, refusal.status(), body)
        self._record(params, 200, None)
        return _respond(start_response, 200, answer)

    def _translate(self, params: Any) -> dict[str, Any]:
        from botocore.validate import ParamValidator

        operation = _model().operation_model("TranslateText")
        report = ParamValidator().validate(params, operation.input_shape)
        if report.has_errors():
            raise Refusal("ValidationException", report.generate_report())
        _check_lengths(params, operation.input_shape)
        with self._lock:
            if self._throttle:
                self._throttle -= 1 if self._throttle > 0 else 0
                raise Refusal(
                    "ThrottlingException", "Rate exceeded (the local stand-in was told to throttle)"
                )
        text, source, target = params["Text"], params["SourceLanguageCode"], params["TargetLanguageCode"]
        size = len(text.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise Refusal(
                "TextSizeLimitExceededException",
                f"Input text size exceeds limit. Max length of request text allowed is "
                f"{MAX_TEXT_BYTES} bytes while in this request the text size is {size} bytes",
            )
        if source == "auto":
            if not any(c.isalpha() for c in text):
                raise Refusal(
                    "DetectedLanguageLowConfidenceException",
                    "Could not detect the language of the text with high confidence",
                    DetectedLanguageCode="en",
                )
            source = "ar" if _ARABIC.search(text) else "en"
        if source not in LANGUAGES or target not in LANGUAGES:
            raise Refusal(
                "UnsupportedLanguagePairException",
                f"Unsupported language pair: {source} to {target}",
                SourceLanguageCode=source,
                TargetLanguageCode=target,
            )
        if source == target:
            raise Refusal(
                "InvalidRequestException", "The source language and the target language are the same"
            )
        answer = {
            "TranslatedText": pseudo_translation(text, target),
            "SourceLanguageCode": source,
            "TargetLanguageCode": target,
        }
        checked = ParamValidator().validate(answer, operation.output_shape)
        if checked.has_errors():  # the stand-in's own mistake: never an answer the SDK would not parse
            raise RuntimeError(checked.generate_report())
        return answer

    def _record(self, params: Any, status: int, error: str | None) -> None:
        p = params if isinstance(params, dict) else {}
        text = p.get("Text")
        call = Call(
            source=str(p.get("SourceLanguageCode", "")),
            target=str(p.get("TargetLanguageCode", "")),
            bytes=len(text.encode("utf-8")) if isinstance(text, str) else 0,
            status=status,
            error=error,
        )
        with self._lock:
            self._calls.append(call)


def _check_lengths(params: dict[str, Any], shape: Any) -> None:
    """The model's maximum lengths of string members, which botocore's validator leaves out (it
    checks minimums only), refused as AWS refuses them."""
    for name, member in shape.members.items():
        value, most = params.get(name), member.metadata.get("max")
        if member.type_name == "string" and isinstance(value, str) and most is not None and len(value) > most:
            raise Refusal(
                "ValidationException",
                f"1 validation error detected: Value '{value[:50]}' at '{name[0].lower() + name[1:]}' "
                f"failed to satisfy constraint: Member must have length less than or equal to {most}",
            )


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _respond(
    start_response: Callable[..., Any], status: int, body: Any, content_type: str = CONTENT_TYPE
) -> list[bytes]:
    from http import HTTPStatus

    data = json.dumps(body, ensure_ascii=False).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


class StandInServer:
    """The stand-in alone on a loopback port of its own (port 0: any free one), for a process whose
    AWS is moto's in-process mock (which has no server to put it in front of): point the translate
    client at it with ``AWS_ENDPOINT_URL_TRANSLATE`` (boto3 reads it for that service only)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from werkzeug.serving import make_server

        self.stand_in = TranslateStandIn(throttle=0)
        self._server = make_server(host, port, self.stand_in.wrap(_not_found), threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="translate-stand-in", daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StandInServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return _respond(start_response, 404, {"message": "the translate stand-in serves TranslateText only"})
