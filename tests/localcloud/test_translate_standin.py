"""The local cloud's stand-in of Amazon Translate, driven by Herald's adapter on the real boto3 client.

The stand-in is served in front of moto on the local cloud's own endpoint (``MotoServer``), as the
functions reach it; every answer below is parsed by botocore from the service model, so a field or
an error shape the real API does not have would fail here.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from herald.core.errors import TransientError
from herald.translation.adapters.amazon_translate import AmazonTranslator
from herald.translation.ports import TranslationRefused
from herald_tools.localcloud.server import MotoServer
from herald_tools.localcloud.translate import ADMIN_PATH, TranslateStandIn, pseudo_translation


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    server = MotoServer(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stand_in(server: MotoServer) -> Iterator[TranslateStandIn]:
    server.translate.forget_calls()
    server.translate.throttle(0)
    yield server.translate
    server.translate.throttle(0)


def _client(server: MotoServer, attempts: int = 1, **config: Any) -> Any:
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return boto3.client(
        "translate", endpoint_url=server.endpoint_url, config=Config(retries=retries, **config)
    )  # type: ignore[call-overload]


def test_a_translation_is_a_marked_stand_in_answer_and_moto_still_answers_beside_it(
    server: MotoServer, stand_in: TranslateStandIn
) -> None:
    translator = AmazonTranslator(_client(server))
    answer = translator.translate("Ferry times change.\n\n# Monday\n\n⁂\n\n123", "en", "fr")
    assert answer == (
        "[machine translation to fr — stand-in] Ferry times change.\n\n"
        "# [machine translation to fr — stand-in] Monday\n\n⁂\n\n123"
    )
    assert [(c.source, c.target, c.status) for c in stand_in.calls] == [("en", "fr", 200)]
    # Herald's codes become Translate's: pt-br is pt, zh-hant zh-TW.
    assert translator.translate("Olá", "pt-br", "zh-hant").startswith("[machine translation to zh-TW")
    assert stand_in.calls[-1].source == "pt"
    s3 = boto3.client("s3", endpoint_url=server.endpoint_url)
    s3.create_bucket(Bucket="beside-the-stand-in")
    assert "beside-the-stand-in" in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_the_answer_has_the_fields_of_translate_text(server: MotoServer, stand_in: TranslateStandIn) -> None:
    response = _client(server).translate_text(
        Text="Hello", SourceLanguageCode="auto", TargetLanguageCode="ar"
    )
    assert response["TranslatedText"] == pseudo_translation("Hello", "ar")
    assert (response["SourceLanguageCode"], response["TargetLanguageCode"]) == ("en", "ar")
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"


def test_throttling_is_a_transient_error_and_the_sdk_retries_it(
    server: MotoServer, stand_in: TranslateStandIn
) -> None:
    stand_in.throttle(-1)
    with pytest.raises(TransientError) as caught:
        AmazonTranslator(_client(server)).translate("Hello", "en", "fr")
    assert caught.value.code == "ThrottlingException"
    # Two throttled answers, then the third attempt of botocore's standard retries goes through.
    stand_in.throttle(2)
    stand_in.forget_calls()
    assert AmazonTranslator(_client(server, attempts=3)).translate("Hello", "en", "fr").endswith("Hello")
    assert [c.error for c in stand_in.calls] == ["ThrottlingException", "ThrottlingException", None]


def test_throttling_is_told_over_http_too(server: MotoServer, stand_in: TranslateStandIn) -> None:
    request = urllib.request.Request(
        server.endpoint_url + ADMIN_PATH, data=json.dumps({"throttle": 1}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["throttling"] == 1
    with pytest.raises(TransientError):
        AmazonTranslator(_client(server)).translate("Hello", "en", "fr")
    with urllib.request.urlopen(server.endpoint_url + ADMIN_PATH, timeout=10) as response:
        state = json.load(response)
    assert state["throttling"] == 0
    assert [(c["status"], c["error"]) for c in state["calls"]] == [(400, "ThrottlingException")]


@pytest.mark.parametrize(
    ("text", "source", "target", "code"),
    [
        ("Salve", "en", "la", "UnsupportedLanguagePairException"),  # Translate has no Latin
        ("12 34", "auto", "fr", "DetectedLanguageLowConfidenceException"),
    ],
)
def test_a_refusal_of_the_text_is_recorded_not_retried(
    server: MotoServer, stand_in: TranslateStandIn, text: str, source: str, target: str, code: str
) -> None:
    with pytest.raises(TranslationRefused) as caught:
        AmazonTranslator(_client(server, attempts=3)).translate(text, source, target)
    assert caught.value.code == code
    assert len(stand_in.calls) == 1  # refused once, not asked again by the SDK


def test_the_unsupported_pair_names_both_languages(server: MotoServer, stand_in: TranslateStandIn) -> None:
    client = _client(server)
    with pytest.raises(client.exceptions.UnsupportedLanguagePairException) as caught:
        client.translate_text(Text="Salve", SourceLanguageCode="en", TargetLanguageCode="la")
    error = caught.value.response
    assert (error["SourceLanguageCode"], error["TargetLanguageCode"]) == ("en", "la")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_requests_are_validated_against_the_service_model(
    server: MotoServer, stand_in: TranslateStandIn
) -> None:
    # botocore validates before it sends; without that the stand-in checks the model itself.
    client = _client(server, parameter_validation=False)
    with pytest.raises(TranslationRefused) as caught:
        AmazonTranslator(client).translate("x", "en", "frenchy")
    assert caught.value.code == "ValidationException"
    assert "'targetLanguageCode' failed to satisfy constraint" in str(caught.value)
    with pytest.raises(client.exceptions.TextSizeLimitExceededException):
        client.translate_text(Text="é" * 5001, SourceLanguageCode="en", TargetLanguageCode="fr")


def test_a_text_over_the_limit_is_cut_at_paragraphs_one_call_a_piece(
    server: MotoServer, stand_in: TranslateStandIn
) -> None:
    paragraphs = [f"Paragraph {i}: " + "déjà vu " * 400 for i in range(6)]  # ~3.6 KB each
    answer = AmazonTranslator(_client(server)).translate("\n\n".join(paragraphs), "fr", "en")
    assert answer == "\n\n".join(pseudo_translation(p, "en") for p in paragraphs)
    sizes = [c.bytes for c in stand_in.calls]
    assert len(sizes) == 3 and max(sizes) <= 10_000  # two paragraphs a call
