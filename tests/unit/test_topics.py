"""Topics from the keyword taxonomy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.enrichment.topics import MAX_TOPICS, classify_topics, fold, taxonomy

IDS = [topic.id for topic in taxonomy()]


def test_taxonomy_shape() -> None:
    topics = taxonomy()
    assert 12 <= len(topics) <= 20
    assert len(IDS) == len(set(IDS))
    assert all(topic.label and topic.keywords for topic in topics)


@pytest.mark.parametrize(
    ("text", "hashtags", "first"),
    [
        ("Free measles vaccination at the clinic tomorrow", [], "health"),
        ("La vacunación contra el sarampión comienza el lunes", [], "health"),
        ("Campagne de vaccination à Dakar", [], "health"),
        ("Vacinação contra o sarampo amanhã", [], "health"),
        ("حملة التطعيم واللقاحات مجانية في العيادة", [], "health"),
        ("", ["#COVID19"], "health"),
        ("Migrant workers and the kafala system", [], "labour-migration"),
        (
            "At least 62 Gambians died in a tragic shipwreck off the coast of Mauritania",
            [],
            "missing-migrants",
        ),
        ("Beware of scams: never pay anyone for a job offer", [], "safety-scams"),
        ("Attention aux arnaques : ne payez jamais", [], "safety-scams"),
        ("Registration deadline for passport renewal", [], "registration-documents"),
        ("Inscripción y pasaportes: fecha límite el viernes", [], "registration-documents"),
        ("Cyclone and floods expected along the coast", [], "emergencies"),
        ("Remittances fell as the currency lost value", [], "remittances-economy"),
        ("Human trafficking survivors", [], "trafficking"),
        ("Internally displaced people in camps", [], "displacement"),
        ("", ["WorldRefugeeDay"], "displacement"),
        ("", ["migrantworkers"], "labour-migration"),
        ("KAYIT için son gün yarın", [], "registration-documents"),
    ],
)
def test_examples(text: str, hashtags: list[str], first: str) -> None:
    assert classify_topics(text, hashtags)[0] == first


def test_nothing_for_unrelated_text() -> None:
    assert classify_topics("Hello everyone, have a nice weekend", []) == []
    assert classify_topics("", []) == []


def test_whole_words_and_prefixes() -> None:
    assert classify_topics("The campaign starts", []) == []  # "camp" is a whole word
    assert classify_topics("Refugees", []) == ["displacement"]  # "refugee*" is a prefix


def test_order_by_hits_then_taxonomy() -> None:
    text = "Refugees, refugees and displaced families need vaccines"
    assert classify_topics(text, []) == ["displacement", "health"]
    assert classify_topics("vaccines for refugees", []) == ["health", "displacement"]


def test_hashtag_in_text_and_list_counts_once() -> None:
    text = "Refugees in the camps #COVID19 #COVID19"  # displacement 2 hits, health 1
    assert classify_topics(text, ["COVID19", "#covid19"]) == ["displacement", "health"]


def test_fold() -> None:
    assert fold("Santé ÉDUCAÇÃO") == "sante educacao"
    assert fold("KAYIT") == fold("kayıt")


def test_at_most_five() -> None:
    text = (
        "vaccine jobs trafficking refugees drought earthquake school data urban remittances scam "
        "passport shipwreck integration returnees violence food"
    )
    assert len(classify_topics(text, [])) == MAX_TOPICS


@given(st.text(max_size=300), st.lists(st.text(max_size=30), max_size=5))
@settings(max_examples=300, deadline=None)
def test_only_taxonomy_ids(text: str, hashtags: list[str]) -> None:
    topics = classify_topics(text, hashtags)
    assert len(topics) <= MAX_TOPICS
    assert len(topics) == len(set(topics))
    assert all(topic in IDS for topic in topics)
