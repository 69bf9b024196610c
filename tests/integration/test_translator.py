"""The translator function on moto, fed the content table's real stream records as Lambda feeds them
(the template's event source: batch size, FilterCriteria, retries, through the local cloud's stream
poller), calling the local cloud's Translate stand-in with its own boto3 client.

Posts are uploaded to S3 and stored by the ingest function, as always; the community's settings
are written on its profile item as the settings upload stores them (``settings``). Every
TranslateText request is counted where it arrives: at the stand-in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from herald_tools.localcloud.event_sources import DynamoDBStreamPoller
from herald_tools.localcloud.functions import InvocationResult
from herald_tools.localcloud.provision import EventSourceSpec
from herald_tools.localcloud.template import load_template_text
from herald_tools.localcloud.translate import StandInServer, TranslateStandIn
from tests.integration.conftest import REGION, LambdaContext, Stack, load_handler

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "TranslatorFunction"
COMMUNITY = "harbour-line"
MARK = "[machine translation to {} — stand-in] "


@dataclass
class _Spec:
    arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}"


@dataclass
class TranslatorFunction:
    """The handler as one Lambda worker (an exception is a failed invocation); every event kept."""

    handler: Any
    name: str = FUNCTION
    spec: _Spec = field(default_factory=_Spec)
    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    invocations: list[InvocationResult] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
        self.events.append(event)
        try:
            result = self.handler.handler(event, LambdaContext())
        except Exception as exc:
            failed = InvocationResult(
                ok=False, request_id=uuid.uuid4().hex, error_type=type(exc).__name__, error_message=str(exc)
            )
            self.invocations.append(failed)
            return failed
        self.results.append(result)
        self.invocations.append(InvocationResult(ok=True, request_id=uuid.uuid4().hex, result=result))
        return self.invocations[-1]


@dataclass
class Rig:
    stack: Stack
    stand_in: TranslateStandIn
    function: TranslatorFunction
    poller: DynamoDBStreamPoller

    def settings(self, community: str, **settings: Any) -> None:
        """The community's settings on its profile item, as the settings upload stores them."""
        self.stack.ddb.update_item(
            TableName=self.stack.table,
            Key={"pk": {"S": f"C#{community}"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="SET settings = :s",
            ExpressionAttributeValues={":s": {"M": {k: _attr(v) for k, v in settings.items()}}},
        )

    def upload(self, name: str, body: str, community: str = COMMUNITY) -> str:
        key = f"posts/{community}/{name}"
        self.stack.put(key, body)
        self.stack.drain()
        outcome = self.stack.outcome(key)
        assert outcome["status"] in ("published", "updated"), outcome
        return str(outcome["post_ids"][0])

    def settle(self) -> None:
        """Poll the stream until the translator has taken every record (its own writes' too)."""
        for _ in range(200):
            if self.poller.pending() is None:
                return
            self.poller.poll_once()
        raise AssertionError("the content stream did not settle")

    def calls(self, status: int | None = 200) -> list[tuple[str, str]]:
        return [(c.source, c.target) for c in self.stand_in.calls if status is None or c.status == status]

    def item(self, community: str, sk: str) -> dict[str, Any] | None:
        from herald.core.aws import from_item

        key = {"pk": {"S": f"C#{community}"}, "sk": {"S": sk}}
        found = self.stack.ddb.get_item(TableName=self.stack.table, Key=key, ConsistentRead=True).get("Item")
        return from_item(found) if found else None

    def post(self, post_id: str, community: str = COMMUNITY) -> dict[str, Any]:
        found = self.item(community, f"POST#{post_id}")
        assert found is not None, post_id
        return found

    def variant(self, post_id: str, lang: str, community: str = COMMUNITY) -> dict[str, Any] | None:
        return self.item(community, f"VAR#{post_id}#{lang}")


def _attr(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(value)


def mapping(stream_arn: str) -> EventSourceSpec:
    raw = load_template_text((ROOT / "template.yaml").read_text())
    [properties] = [
        e["Properties"]
        for e in raw["Resources"][FUNCTION]["Properties"]["Events"].values()
        if e["Type"] == "DynamoDB"
    ]
    properties = {k: v for k, v in properties.items() if k not in ("Stream", "DestinationConfig")}
    return EventSourceSpec(
        function=FUNCTION, name="ContentStream", type="DynamoDB", properties=properties, source_arn=stream_arn
    )


@pytest.fixture
def translate_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInServer]:
    with StandInServer() as server:
        # What the function's boto3 client reads for Translate alone (moto serves the rest in process).
        monkeypatch.setenv("AWS_ENDPOINT_URL_TRANSLATE", server.endpoint_url)
        yield server


@pytest.fixture
def rig(stack: Stack, translate_endpoint: StandInServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    from herald.core import aws

    monkeypatch.setenv("CONTENT_TABLE", stack.table)
    handler = load_handler("translator")
    handler.configure(None)  # the function's own store and translator, built from its environment
    aws.client.cache_clear()
    stream_arn = stack.ddb.describe_table(TableName=stack.table)["Table"]["LatestStreamArn"]
    function = TranslatorFunction(handler)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    poller = DynamoDBStreamPoller(mapping(stream_arn), function, streams, retry_delay=0.0)
    poller.initialise()  # LATEST: from here on
    yield Rig(stack, translate_endpoint.stand_in, function, poller)
    handler.configure(None)
    aws.client.cache_clear()


NOTICE = """---
title: Registration opens on Monday
---
Registration for the winter distribution opens on **Monday** at the harbour office.

Bring your card. Questions: #help
"""
CLINIC = "The clinic is open from 8:00 to 16:00 on weekdays, and closed on public holidays this month."


def test_each_post_gets_one_call_per_listed_language_and_its_machine_variants(rig: Rig) -> None:
    rig.settings(COMMUNITY, machine_translations=["fr", "ar"], push_machine_translations=False)
    notice = rig.upload("notice.md", NOTICE)
    clinic = rig.upload("clinic.txt", CLINIC)
    rig.settle()

    assert sorted(rig.calls()) == [("en", "ar"), ("en", "ar"), ("en", "fr"), ("en", "fr")]
    for post_id in (notice, clinic):
        post = rig.post(post_id)
        assert set(post["variants"]) == {"fr", "ar"}
        assert post["variants_rev"] == 2  # one more for each write of the map, as ingest counts them
        for lang in ("fr", "ar"):
            variant = rig.variant(post_id, lang)
            assert variant is not None
            assert variant["origin"] == "machine" and variant["lang"] == lang == variant["language"]
            assert variant["source_hash"] == post["content_hash"] != variant["content_hash"]
            assert variant["text"].startswith(MARK.format(lang)) and variant["format"] == post["format"]
            assert post["variants"][lang]["origin"] == "machine"
            assert post["variants"][lang]["title"] == variant["title"]
    # The editor's title went in the same call as the text; a derived one comes from the translation.
    notice_fr = rig.variant(notice, "fr")
    assert notice_fr is not None
    assert notice_fr["title"] == MARK.format("fr") + "Registration opens on Monday"
    assert notice_fr["hashtags"] == ["help"] and notice_fr["excerpt"].startswith(MARK.format("fr"))
    assert rig.variant(clinic, "ar")["title"].startswith(MARK.format("ar") + "The clinic")  # type: ignore[index]
    # Each variant's summary on the post made a MODIFY record the translator saw: none asked again.
    assert len(rig.function.events) >= 2 and len(rig.calls(None)) == 4


def test_a_batch_given_again_makes_no_call(rig: Rig) -> None:
    rig.settings(COMMUNITY, machine_translations=["fr", "ar"])
    post_id = rig.upload("clinic.txt", CLINIC)
    rig.settle()
    assert len(rig.calls()) == 2
    before = {lang: rig.variant(post_id, lang) for lang in ("fr", "ar")}
    for event in list(rig.function.events):  # every batch, delivered again as it was
        assert rig.function.invoke(event).result == {"batchItemFailures": []}
    assert len(rig.calls(None)) == 2
    assert {lang: rig.variant(post_id, lang) for lang in ("fr", "ar")} == before


def test_an_edit_makes_the_machine_variants_again_from_the_new_text(rig: Rig) -> None:
    rig.settings(COMMUNITY, machine_translations=["fr"])
    post_id = rig.upload("clinic.txt", CLINIC)
    rig.settle()
    first = rig.variant(post_id, "fr")
    assert first is not None and first["version"] == 1
    assert rig.upload("clinic.txt", CLINIC.replace("8:00 to 16:00", "9:00 to 17:00")) == post_id
    rig.settle()
    again = rig.variant(post_id, "fr")
    assert again is not None and len(rig.calls()) == 2
    assert again["source_hash"] == rig.post(post_id)["content_hash"] != first["source_hash"]
    assert "9:00 to 17:00" in again["text"] and again["version"] == 2
    assert again["created_at"] == first["created_at"] and again["updated_at"] > first["updated_at"]


def test_a_human_variant_is_never_overwritten(rig: Rig) -> None:
    rig.settings(COMMUNITY, machine_translations=["fr", "ar"])
    post_id = rig.upload("clinic.txt", CLINIC)
    # The editors' French arrives before the translator has read the post's record.
    now = datetime.now(UTC).isoformat()
    human = {
        "post_id": post_id,
        "community": COMMUNITY,
        "lang": "fr",
        "key": "posts/harbour-line/clinic.fr.txt",
        "origin": "human",
        "format": "txt",
        "title": "La clinique",
        "text": "La clinique est ouverte de 8h à 16h en semaine.",
        "excerpt": "La clinique est ouverte de 8h à 16h en semaine.",
        "content_hash": "f" * 64,
        "created_at": now,
        "updated_at": now,
        "type": "variant",
    }
    rig.stack.ddb.put_item(
        TableName=rig.stack.table,
        Item={
            "pk": {"S": f"C#{COMMUNITY}"},
            "sk": {"S": f"VAR#{post_id}#fr"},
            **{k: _attr(v) for k, v in human.items()},
        },
    )
    rig.settle()
    assert rig.calls() == [("en", "ar")]
    assert rig.variant(post_id, "fr") == {"pk": f"C#{COMMUNITY}", "sk": f"VAR#{post_id}#fr", **human}

    # And the store's own guard: a machine variant put over a human one is refused, nothing written.
    from herald.content.models import Variant, VariantOrigin
    from herald.translation.adapters.dynamo_variants import DynamoVariantStore

    machine = Variant.model_validate(
        {**rig.variant(post_id, "ar"), "lang": "fr", "origin": VariantOrigin.MACHINE}  # type: ignore[dict-item]
    )
    store = DynamoVariantStore(rig.stack.table, rig.stack.ddb)
    assert store.put_machine_variant(machine) is False
    assert rig.variant(post_id, "fr")["origin"] == "human"  # type: ignore[index]
    assert "fr" not in rig.post(post_id)["variants"]


def test_a_community_without_the_setting_makes_no_call(rig: Rig) -> None:
    rig.settings("quiet-harbour", default_language="en")  # settings, but no machine_translations
    rig.upload("clinic.txt", CLINIC, community="quiet-harbour")
    rig.upload("clinic.txt", CLINIC.replace("8:00", "7:30"), community="no-settings")
    rig.settle()
    assert rig.function.events  # the records reached the function
    assert rig.stand_in.calls == []
    assert (
        rig.stack.ddb.scan(
            TableName=rig.stack.table,
            FilterExpression="begins_with(sk, :v)",
            ExpressionAttributeValues={":v": {"S": "VAR#"}},
        )["Items"]
        == []
    )


def test_an_unsupported_language_is_recorded_and_not_asked_again_until_an_edit(rig: Rig) -> None:
    rig.settings(COMMUNITY, machine_translations=["la", "fr"])  # Translate has no Latin
    post_id = rig.upload("clinic.txt", CLINIC)
    rig.settle()
    assert rig.calls(None) == [("en", "la"), ("en", "fr")] and rig.calls(400) == [("en", "la")]
    refused = rig.item(COMMUNITY, f"MTFAIL#{post_id}#la")
    assert refused is not None and refused["code"] == "UnsupportedLanguagePairException"
    assert refused["source_hash"] == rig.post(post_id)["content_hash"] and refused["expires_at"] > 0
    assert rig.variant(post_id, "la") is None and set(rig.post(post_id)["variants"]) == {"fr"}
    for event in list(rig.function.events):
        rig.function.invoke(event)
    assert len(rig.calls(None)) == 2
    rig.upload("clinic.txt", CLINIC + " Bring your card.")
    rig.settle()
    assert rig.calls(None)[2:] == [("en", "la"), ("en", "fr")]


def test_throttling_fails_the_record_and_its_retry_translates_it(rig: Rig) -> None:
    from herald.translation.adapters.amazon_translate import AmazonTranslator
    from herald.translation.adapters.dynamo_variants import DynamoVariantStore

    # The function's client, without botocore's own retries: the stream's retry is what is tested.
    client = boto3.client(
        "translate", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    rig.function.handler.configure(
        lambda: (DynamoVariantStore(rig.stack.table, rig.stack.ddb), AmazonTranslator(client))
    )
    rig.settings(COMMUNITY, machine_translations=["fr", "ar"])
    post_id = rig.upload("clinic.txt", CLINIC)
    rig.stand_in.throttle(1)
    rig.settle()
    assert rig.calls(None)[0] == ("en", "fr") and rig.stand_in.calls[0].error == "ThrottlingException"
    # Its one record failed, so the invocation failed (Powertools: every record of the batch failed),
    # and the stream gave it again.
    assert [r.ok for r in rig.function.invocations][:2] == [False, True]
    assert "ThrottlingException" in (rig.function.invocations[0].error_message or "")
    assert sorted(rig.calls()) == [("en", "ar"), ("en", "fr")]
    assert set(rig.post(post_id)["variants"]) == {"fr", "ar"}
    assert json.dumps(rig.function.results[-1]) == '{"batchItemFailures": []}'
