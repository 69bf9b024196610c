"""Language variants (``posts/<c>/<name>.<lang>.<ext>``) through the ingest queue, on moto: every
upload order (original first, variant first, variants racing in one batch and redelivered), edits,
deletes of each, two keys for one variant, an unknown code, the wait for a missing original and
its check, community settings uploads and machine variants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.integration.ingest_rig import table_items

EN = "The clinic in the north district opens at eight in the morning from Monday to Friday."
EN_EDIT = "The clinic in the north district now opens at nine in the morning, from Monday to Saturday."
FR = "La clinique du quartier nord ouvre à huit heures du matin, du lundi au vendredi."
FR_EDIT = "La clinique du quartier nord ouvre désormais à neuf heures du matin, du lundi au samedi."
AR = "تفتح العيادة في الحي الشمالي أبوابها في الساعة الثامنة صباحا من الاثنين إلى الجمعة."
ES = "La clínica del barrio norte abre a las ocho de la mañana, de lunes a viernes."


def post_of(stack: Stack, community: str = "demo") -> dict[str, Any]:
    [post] = stack.posts(community)
    return post


def variant_items(stack: Stack, community: str = "demo") -> list[dict[str, Any]]:
    return [i for i in table_items(stack, f"C#{community}") if i["sk"]["S"].startswith("VAR#")]


def stem_items(stack: Stack, community: str = "demo") -> list[dict[str, Any]]:
    return [i for i in table_items(stack, f"C#{community}") if i["sk"]["S"].startswith("STEM#")]


def delayed_messages(stack: Stack) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


@pytest.fixture
def no_wait(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack with VARIANT_WAIT_S=0: a waiting variant's check is due at once."""
    monkeypatch.setenv("VARIANT_WAIT_S", "0")
    stack.handler.ingest_service.cache_clear()
    return stack


# -- original first --------------------------------------------------------------------------------


def test_a_variant_after_its_original_is_stored_beside_the_post(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    original = post_of(stack)
    stack.put("posts/demo/clinic.fr.md", f"---\ntitle: Horaires de la clinique\n---\n{FR}")
    [response] = stack.drain()
    assert response == {"batchItemFailures": []}
    outcome = stack.outcome("posts/demo/clinic.fr.md")
    assert outcome["status"] == "published" and outcome["variant"] == "fr"
    assert outcome["post_ids"] == [original["id"]] and outcome["warnings"] == []
    post = post_of(stack)
    assert (post["id"], post["version"]) == (original["id"], 1)
    assert post["variants"]["fr"]["title"] == "Horaires de la clinique"
    assert post["variants"]["fr"]["origin"] == "human" and post["variants"]["fr"]["version"] == 1
    [variant] = stack.store().variants("demo", post["id"]).values()
    assert (variant.lang, variant.key, variant.format, variant.pending) == (
        "fr",
        "posts/demo/clinic.fr.md",
        "md",
        False,
    )
    assert variant.language == "fr" and variant.text == FR and variant.word_count > 10
    assert stack.outcome("posts/demo/clinic.txt")["variant"] is None
    assert stack.community("demo")["posts"] == 1  # a variant is no post of its own


def test_a_variant_in_another_language_than_its_name_gets_a_warning(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.put("posts/demo/clinic.de.txt", ES)
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.de.txt")
    assert outcome["status"] == "published" and outcome["variant"] == "de"
    assert outcome["warnings"] == [
        "the text reads as 'es', not 'de' as the key says; stored as the de variant"
    ]
    assert set(post_of(stack)["variants"]) == {"de"}


def test_an_edited_original_keeps_its_variants(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    stack.put("posts/demo/clinic.txt", EN_EDIT)
    stack.drain()
    post = post_of(stack)
    assert post["version"] == 2 and post["text"] == EN_EDIT
    assert set(post["variants"]) == {"fr"} and post["variants"]["fr"]["version"] == 1


# -- variant first ---------------------------------------------------------------------------------


def test_a_variant_before_its_original_waits_and_is_adopted(stack: Stack) -> None:
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    waiting = stack.outcome("posts/demo/clinic.fr.txt")
    assert waiting["status"] == "waiting" and waiting["variant"] == "fr" and waiting["post_ids"] == []
    assert waiting["detail"].startswith("waiting for its original posts/demo/clinic.(txt|md|json) until ")
    assert stack.posts("demo") == []
    assert delayed_messages(stack) == 1  # the check, 900 s away
    [item] = variant_items(stack)
    assert item["pending"] == {"BOOL": True}
    stack.put("posts/demo/clinic.json", json.dumps({"text": EN, "title": "Clinic hours"}))
    stack.drain()
    post = post_of(stack)
    assert set(post["variants"]) == {"fr"}
    adopted = stack.outcome("posts/demo/clinic.fr.txt")
    assert adopted["status"] == "published" and adopted["post_ids"] == [post["id"]]
    assert adopted["sequencer"] == waiting["sequencer"]
    [variant] = stack.store().variants("demo", post["id"]).values()
    assert variant.post_id == post["id"] and not variant.pending
    assert [i["sk"]["S"] for i in variant_items(stack)] == [f"VAR#{post['id']}#fr"]


def test_a_variant_whose_original_never_comes_is_rejected_at_the_check(no_wait: Stack) -> None:
    stack = no_wait
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()  # the variant waits; its check (due at once) comes in the next receive
    outcome = stack.outcome("posts/demo/clinic.fr.txt")
    assert outcome["status"] == "rejected" and outcome["variant"] == "fr"
    assert "original posts/demo/clinic.(txt|md|json) did not arrive within 0 s" in outcome["detail"]
    assert outcome["rejected_copy"] == "rejected/posts/demo/clinic.fr.txt"
    assert stack.read("rejected/posts/demo/clinic.fr.txt").decode() == FR
    assert variant_items(stack) == []
    [stem] = stem_items(stack)
    assert stem["pending"] == {"N": "0"}
    # the original that comes later is a post without variants
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    assert post_of(stack)["variants"] == {}


def test_the_check_of_a_variant_adopted_in_time_changes_nothing(no_wait: Stack) -> None:
    stack = no_wait
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    post = post_of(stack)
    outcome = stack.outcome("posts/demo/clinic.fr.txt")
    assert outcome["status"] == "published" and outcome["post_ids"] == [post["id"]]
    assert set(post["variants"]) == {"fr"}
    assert not stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="rejected/").get("Contents")


def test_a_check_before_it_is_due_is_queued_again(stack: Stack) -> None:
    from herald.ingest.events import VariantCheck

    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    waiting = stack.outcome("posts/demo/clinic.fr.txt")
    early = VariantCheck(
        bucket=stack.bucket,
        key="posts/demo/clinic.fr.txt",
        sequencer=waiting["sequencer"],
        version_id=waiting["version_id"],
        event_time=datetime.fromisoformat(waiting["event_time"]),
        due=datetime(2999, 1, 1, tzinfo=UTC),
    )
    assert stack.invoke_bodies([early.body()]) == {"batchItemFailures": []}
    assert stack.outcome("posts/demo/clinic.fr.txt")["status"] == "waiting"
    assert delayed_messages(stack) == 2  # the first check, and this one again


# -- racing, redelivered, out of order --------------------------------------------------------------


def test_variants_racing_their_original_in_one_batch_and_redelivered(stack: Stack) -> None:
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.put("posts/demo/clinic.ar.txt", AR)
    stack.put("posts/demo/clinic.txt", EN)
    messages = stack.receive()
    assert len(messages) == 3
    assert stack.invoke(messages) == {"batchItemFailures": []}
    post = post_of(stack)
    assert set(post["variants"]) == {"fr", "ar"}
    before = {k: stack.outcome(k) for k in ("posts/demo/clinic.fr.txt", "posts/demo/clinic.ar.txt")}
    assert all(o["status"] == "published" and o["post_ids"] == [post["id"]] for o in before.values())
    # the same batch again: nothing changes
    assert stack.invoke_bodies([m["Body"] for m in messages]) == {"batchItemFailures": []}
    assert post_of(stack) == post
    assert {k: stack.outcome(k) for k in before} == before
    assert sorted(i["sk"]["S"] for i in variant_items(stack)) == [
        f"VAR#{post['id']}#ar",
        f"VAR#{post['id']}#fr",
    ]


def test_two_variants_of_one_post_in_one_batch(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.put("posts/demo/clinic.ar.md", AR)
    messages = stack.receive()
    assert len(messages) == 2
    stack.invoke(messages)
    stack.invoke_bodies([m["Body"] for m in reversed(messages)])
    post = post_of(stack)
    assert set(post["variants"]) == {"fr", "ar"} and post["version"] == 1
    assert {v.version for v in stack.store().variants("demo", post["id"]).values()} == {1}


def test_an_older_event_of_a_variant_changes_nothing(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    stack.put("posts/demo/clinic.fr.txt", FR)
    first = stack.receive()
    stack.put("posts/demo/clinic.fr.txt", FR_EDIT)
    second = stack.receive()
    for messages in (second, first, second):
        stack.invoke(messages)
    post = post_of(stack)
    [variant] = stack.store().variants("demo", post["id"]).values()
    assert variant.text == FR_EDIT and variant.version == 1
    assert post["variants"]["fr"]["version"] == 1


# -- edits and deletes ------------------------------------------------------------------------------


def test_an_edited_variant_is_a_new_version_of_the_variant_only(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    stack.put("posts/demo/clinic.fr.txt", FR_EDIT)
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.fr.txt")
    assert outcome["status"] == "updated" and outcome["variant"] == "fr"
    post = post_of(stack)
    assert post["version"] == 1 and post["text"] == EN
    assert post["variants"]["fr"]["version"] == 2
    [variant] = stack.store().variants("demo", post["id"]).values()
    assert variant.text == FR_EDIT and variant.version == 2
    # the same text again keeps the version
    stack.put("posts/demo/clinic.fr.txt", FR_EDIT + "\n")
    stack.drain()
    assert stack.outcome("posts/demo/clinic.fr.txt")["detail"] == "content unchanged; version 2 kept"
    assert post_of(stack)["variants"]["fr"]["version"] == 2


def test_deleting_a_variant_removes_that_variant_only(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.put("posts/demo/clinic.ar.txt", AR)
    stack.drain()
    stack.delete("posts/demo/clinic.fr.txt")
    stack.drain()
    post = post_of(stack)
    outcome = stack.outcome("posts/demo/clinic.fr.txt")
    assert (
        outcome["status"] == "deleted" and outcome["variant"] == "fr" and outcome["post_ids"] == [post["id"]]
    )
    assert set(post["variants"]) == {"ar"} and post["version"] == 1
    assert set(stack.store().variants("demo", post["id"])) == {"ar"}


def test_deleting_a_waiting_variant_stops_its_wait(stack: Stack) -> None:
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    stack.delete("posts/demo/clinic.fr.txt")
    stack.drain()
    assert (
        stack.outcome("posts/demo/clinic.fr.txt")["detail"]
        == "the fr variant no longer waits for its original"
    )
    assert variant_items(stack) == []
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    assert post_of(stack)["variants"] == {}


def test_deleting_the_original_removes_the_post_and_all_its_variants(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.put("posts/demo/clinic.ar.txt", AR)
    stack.drain()
    stack.delete("posts/demo/clinic.txt")
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.txt")
    assert outcome["status"] == "deleted" and outcome["detail"].endswith("with its variants ar, fr")
    assert stack.posts("demo") == [] and variant_items(stack) == [] and stem_items(stack) == []
    assert stack.community("demo")["posts"] == 0
    # a variant uploaded now waits for a new original
    stack.put("posts/demo/clinic.es.txt", ES)
    stack.drain()
    assert stack.outcome("posts/demo/clinic.es.txt")["status"] == "waiting"


# -- bad input -------------------------------------------------------------------------------------


def test_a_second_key_for_the_same_variant_is_rejected_naming_the_first(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    post_id = post_of(stack)["id"]
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    stack.put("posts/demo/clinic.fr.md", FR_EDIT)
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.fr.md")
    assert outcome["status"] == "rejected"
    assert outcome["detail"] == f"key: variant fr of post {post_id} is already 'posts/demo/clinic.fr.txt'"
    assert outcome["rejected_copy"] == "rejected/posts/demo/clinic.fr.md"
    [variant] = stack.store().variants("demo", post_id).values()
    assert variant.key == "posts/demo/clinic.fr.txt" and variant.text == FR


def test_a_second_key_for_a_waiting_variant_is_rejected_naming_the_first(stack: Stack) -> None:
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    stack.put("posts/demo/clinic.fr.json", json.dumps({"text": FR_EDIT}))
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.fr.json")
    assert outcome["status"] == "rejected"
    assert outcome["detail"] == (
        "key: variant fr of posts/demo/clinic.(txt|md|json) already waits as 'posts/demo/clinic.fr.txt'"
    )


def test_an_unknown_language_code_is_rejected(stack: Stack) -> None:
    stack.put("posts/demo/clinic.xx.txt", FR)
    stack.put("posts/demo/clinic.FR.txt", FR)
    stack.put("posts/demo/report.v2.txt", EN)  # not a language: an ordinary post
    stack.drain()
    unknown = stack.outcome("posts/demo/clinic.xx.txt")
    assert unknown["status"] == "rejected" and unknown["rejected_copy"] == "rejected/posts/demo/clinic.xx.txt"
    assert unknown["detail"].startswith("key: unknown language code 'xx' in 'posts/demo/clinic.xx.txt'")
    upper = stack.outcome("posts/demo/clinic.FR.txt")
    assert upper["status"] == "rejected" and "must be lowercase: 'fr'" in upper["detail"]
    assert [p["key"] for p in stack.posts("demo")] == ["posts/demo/report.v2.txt"]


# -- what a post says is coming ---------------------------------------------------------------------


def test_translations_and_their_window_are_stored_on_the_post(stack: Stack) -> None:
    stack.put("posts/demo/clinic.md", f"---\ntranslations: [fr, ar]\ntranslation_window: 15m\n---\n{EN}")
    stack.put(
        "posts/demo/other.json", json.dumps({"text": ES, "translations": ["en"], "translation_window": "2h"})
    )
    stack.drain()
    by_key = {p["key"]: p for p in stack.posts("demo")}
    assert by_key["posts/demo/clinic.md"]["translations"] == ["fr", "ar"]
    assert by_key["posts/demo/clinic.md"]["translation_window_s"] == 900
    assert by_key["posts/demo/other.json"]["translation_window_s"] == 7200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"text": "x", "translations": ["fr", "xx"]}', "translations: unknown language code 'xx'"),
        ('{"text": "x", "translation_window": "25h"}', "translation_window: '25h' is longer than 24 h"),
        ('{"text": "x", "translation_window": "soon"}', "translation_window"),
    ],
)
def test_bad_translations_are_rejected(stack: Stack, body: str, expected: str) -> None:
    stack.put("posts/demo/clinic.json", body)
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.json")
    assert outcome["status"] == "rejected" and outcome["detail"].startswith(expected)


def test_translations_on_a_variant_are_ignored_with_a_warning(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.put("posts/demo/clinic.fr.json", json.dumps({"text": FR, "translations": ["ar"]}))
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.fr.json")
    assert outcome["status"] == "published"
    assert outcome["warnings"] == [
        "translations and translation_window are the original's to say: ignored on a variant"
    ]


# -- community settings -----------------------------------------------------------------------------


def test_community_settings_are_stored_on_the_profile(stack: Stack) -> None:
    from herald.content.models import CommunitySettings

    stack.put("posts/demo/clinic.txt", EN)
    settings = {
        "default_language": "en",
        "machine_translations": ["fr", "ar"],
        "push_machine_translations": False,
    }
    stack.put("communities/demo.json", json.dumps(settings))
    stack.drain()
    outcome = stack.outcome("communities/demo.json")
    assert outcome["status"] == "published" and outcome["community"] == "demo"
    assert stack.store().community_settings("demo") == CommunitySettings.model_validate(settings)
    assert stack.community("demo")["posts"] == 1  # the profile keeps its counters
    stack.put("communities/demo.json", json.dumps({**settings, "push_machine_translations": True}))
    stack.drain()
    assert stack.outcome("communities/demo.json")["status"] == "updated"
    assert stack.store().community_settings("demo").push_machine_translations is True
    stack.delete("communities/demo.json")
    stack.drain()
    assert stack.outcome("communities/demo.json")["status"] == "deleted"
    assert stack.store().community_settings("demo") == CommunitySettings()


@pytest.mark.parametrize(
    ("key", "body", "expected"),
    [
        ("communities/demo.json", '{"default_language": "en", "colour": "red"}', "colour: Extra inputs"),
        ("communities/demo.json", '{"machine_translations": ["fr", "xx"]}', "machine_translations: unknown"),
        ("communities/demo.json", '{"push_machine_translations": "yes"}', "push_machine_translations"),
        ("communities/Demo.json", "{}", "key: community 'Demo' is not a valid id"),
        ("communities/demo.txt", "{}", "key: 'communities/demo.txt' does not have the form"),
    ],
)
def test_bad_community_settings_are_rejected(stack: Stack, key: str, body: str, expected: str) -> None:
    stack.put(key, body)
    stack.drain()
    outcome = stack.outcome(key)
    assert outcome["status"] == "rejected" and outcome["detail"].startswith(expected), outcome["detail"]
    assert stack.store().community_settings("demo").machine_translations == []


# -- machine variants -------------------------------------------------------------------------------


def machine_variant(post_id: str, lang: str = "fr", text: str = "[machine] " + FR) -> Any:
    from herald.content.models import Variant, VariantOrigin

    now = datetime.now(UTC)
    return Variant(
        post_id=post_id,
        community="demo",
        lang=lang,
        key=f"machine:{lang}",
        origin=VariantOrigin.MACHINE,
        title=text[:40],
        text=text,
        excerpt=text[:80],
        content_hash="0" * 64,
        created_at=now,
        updated_at=now,
    )


def test_a_machine_variant_is_stored_and_a_human_one_replaces_it(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    post_id = post_of(stack)["id"]
    store = stack.store()
    assert store.put_machine_variant(machine_variant(post_id)) is True
    assert post_of(stack)["variants"]["fr"]["origin"] == "machine"
    assert store.put_machine_variant(machine_variant(post_id, text="[machine] again " + FR)) is True
    assert store.variants("demo", post_id)["fr"].version == 2  # a machine fill replaces a machine one
    stack.put("posts/demo/clinic.fr.txt", FR)
    stack.drain()
    outcome = stack.outcome("posts/demo/clinic.fr.txt")
    assert outcome["status"] == "published" and outcome["detail"].endswith(
        "it replaces the machine translation"
    )
    assert post_of(stack)["variants"]["fr"]["origin"] == "human"
    # a machine fill never overwrites a human variant, nor makes a post that does not exist
    assert store.put_machine_variant(machine_variant(post_id)) is False
    assert store.put_machine_variant(machine_variant("0" * 20, lang="ar")) is False
    variants = store.variants("demo", post_id)
    assert list(variants) == ["fr"] and variants["fr"].origin == "human" and variants["fr"].text == FR
    assert post_of(stack)["variants"]["fr"]["origin"] == "human"


# -- writes that cross, on DynamoDB's own conditions ---------------------------------------------------


def another_ingest_before_the_next_transaction(stack: Stack, messages: list[dict[str, Any]]) -> Any:
    """A second ingest worker (its own IngestService on the same table and bucket) that handles
    ``messages`` just before the handler's next TransactWriteItems: the writes cross."""
    import contextlib
    import uuid

    from herald.core import aws
    from herald.enrichment.pipeline import enrich
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.adapters.s3_objects import S3ObjectStore
    from herald.ingest.adapters.sqs_checks import SqsChecks
    from herald.ingest.events import ObjectEvent, parse_message_body
    from herald.ingest.service import IngestService

    other = IngestService(
        S3ObjectStore(stack.s3),
        DynamoContentStore(stack.table, stack.ddb),
        enricher=enrich,
        checks=SqsChecks(stack.queue_url, stack.sqs),
    )
    client = aws.client("dynamodb")
    fired = False

    def cross(**_: Any) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        for message in messages:
            events = parse_message_body(message["Body"])
            assert isinstance(events, list)
            for event in events:
                assert isinstance(event, ObjectEvent)
                other.handle(event)

    @contextlib.contextmanager
    def hooked() -> Any:
        handler_id = f"cross-{uuid.uuid4()}"
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", cross, unique_id=handler_id)
        try:
            yield
        finally:
            client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id=handler_id)
        assert fired, "the other worker never ran"

    return hooked()


def test_an_original_stored_while_its_variant_decides_to_wait(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    original = stack.receive()
    stack.put("posts/demo/clinic.fr.txt", FR)
    variant = stack.receive()
    with another_ingest_before_the_next_transaction(stack, original):
        stack.invoke(variant)  # reads no original, then the original is stored before its write
    post = post_of(stack)
    assert set(post["variants"]) == {"fr"}
    assert stack.outcome("posts/demo/clinic.fr.txt")["status"] == "published"
    assert [i["sk"]["S"] for i in variant_items(stack)] == [f"VAR#{post['id']}#fr"]


def test_a_variant_that_waits_while_its_original_decides(stack: Stack) -> None:
    stack.put("posts/demo/clinic.fr.txt", FR)
    variant = stack.receive()
    stack.put("posts/demo/clinic.txt", EN)
    original = stack.receive()
    with another_ingest_before_the_next_transaction(stack, variant):
        stack.invoke(original)  # reads no waiting variant, then one starts waiting before its write
    post = post_of(stack)
    assert set(post["variants"]) == {"fr"}
    assert stack.outcome("posts/demo/clinic.fr.txt")["post_ids"] == [post["id"]]


def test_an_edit_of_the_original_crossing_a_new_variant_keeps_both(stack: Stack) -> None:
    stack.put("posts/demo/clinic.txt", EN)
    stack.drain()
    stack.put("posts/demo/clinic.fr.txt", FR)
    variant = stack.receive()
    stack.put("posts/demo/clinic.txt", EN_EDIT)
    edit = stack.receive()
    with another_ingest_before_the_next_transaction(stack, variant):
        stack.invoke(edit)
    post = post_of(stack)
    assert (post["text"], post["version"]) == (EN_EDIT, 2) and set(post["variants"]) == {"fr"}
