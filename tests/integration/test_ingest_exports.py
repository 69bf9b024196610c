"""Large exports are all or nothing: an import that runs out of the function's time resumes on the
retry without enriching or writing again what is stored, and publishes once, complete; one that
cannot finish is rejected with the reason and leaves nothing behind. Real S3 events on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import LambdaContext, Stack
from tests.integration.ingest_rig import (
    ShortContext,
    export_text,
    invoke_with,
    notices,
    table_items,
)

KEY = "exports/safe-routes/page.txt"


@pytest.fixture
def enrich_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the ingest function enriches (the real enricher, counted where the handler takes it)."""
    from herald.enrichment import pipeline

    calls: list[str] = []
    real = pipeline.enrich

    def counting(raw_text: str, **kwargs: Any) -> Any:
        calls.append(raw_text)
        return real(raw_text, **kwargs)

    monkeypatch.setattr(pipeline, "enrich", counting)
    return calls


def test_a_half_imported_export_resumes_and_never_enriches_a_stored_post_again(
    stack: Stack, enrich_calls: list[str]
) -> None:
    posts = notices(80)
    stack.put(KEY, export_text(posts))
    messages = stack.receive()
    # Little time: the run stores part of the export, then stops before the "timeout".
    failed = invoke_with(stack, messages, ShortContext(budget_ms=10_000))
    assert failed == {messages[0]["MessageId"]}, "an unfinished import is retried, not acknowledged"
    stored = stack.posts("safe-routes")
    assert 0 < len(stored) < len(posts)
    assert stack.store().outcome(KEY) is None, "no outcome until the export is complete"
    assert stack.community("safe-routes")["posts"] == len(stored)  # the counter is exact meanwhile
    first_run = list(enrich_calls)
    assert len(first_run) >= len(stored)

    # SQS delivers the same message again, now with the whole timeout.
    assert invoke_with(stack, messages, LambdaContext()) == set()
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "published"
    assert outcome["counts"] == {
        "posts": 80,
        "published": 80,
        "unchanged": 0,
        "duplicates": 0,
        "removed": 0,
    }
    assert len(stack.posts("safe-routes")) == 80 and stack.community("safe-routes")["posts"] == 80
    # What the first run stored was not enriched again.
    stored_texts = {p["text"] for p in stored}
    assert not stored_texts & set(enrich_calls[len(first_run) :])
    assert sorted(enrich_calls) == sorted(set(enrich_calls)), "each post enriched once"
    assert set(enrich_calls) == set(posts)
    assert all(p["version"] == 1 for p in stack.posts("safe-routes"))
    assert table_items(stack, "KEY#") and not [
        i for i in table_items(stack, "KEY#") if i["sk"]["S"] == "IMPORT"
    ], "the progress record goes with the outcome"


def test_an_export_that_cannot_finish_in_time_is_rejected_and_leaves_nothing(stack: Stack) -> None:
    stack.put(KEY, export_text(notices(2)))
    stack.drain()
    before = {p["id"] for p in stack.posts("safe-routes")}
    assert len(before) == 2
    big = notices(100, start=100)
    stack.put(KEY, export_text(big))
    messages = stack.receive()
    runs = 0
    while True:
        runs += 1
        # Each run has time for one group of posts only.
        if not invoke_with(stack, messages, ShortContext(budget_ms=9_000)):
            break
        assert runs < 10
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "rejected", outcome
    [error] = outcome["errors"]
    assert error["loc"] == "posts"
    assert "100 posts could not be stored within the function's time limit" in error["message"]
    assert "split it" in error["message"]
    # all or nothing: what the rejected version stored is gone, the earlier version stays
    assert {p["id"] for p in stack.posts("safe-routes")} == before
    assert stack.community("safe-routes")["posts"] == 2
    assert stack.read(f"rejected/{KEY}") == export_text(big).encode()
    assert json.loads(stack.read(f"rejected/{KEY}.error.json"))["errors"] == outcome["errors"]


def test_an_export_repeating_posts_publishes_each_text_once(stack: Stack) -> None:
    stack.put("posts/safe-routes/single.txt", "The border crossing at Ras Ajdir is open again.")
    stack.drain()
    posts = [
        *notices(3),
        notices(1)[0],  # the same post twice in the export
        "The border crossing at Ras Ajdir is open again.",  # the text of another key
    ]
    stack.put(KEY, export_text(posts))
    stack.drain()
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "published"
    assert outcome["counts"] == {"posts": 5, "published": 3, "unchanged": 0, "duplicates": 2, "removed": 0}
    assert len(stack.posts("safe-routes")) == 4 and stack.community("safe-routes")["posts"] == 4
    # a redelivery of the same event changes nothing
    stack.put(KEY, export_text(posts))
    stack.drain()
    again = stack.outcome(KEY)
    assert again["counts"] == {"posts": 5, "published": 0, "unchanged": 3, "duplicates": 2, "removed": 0}
    assert stack.community("safe-routes")["posts"] == 4


def test_an_export_over_the_post_bound_is_rejected_before_anything_is_stored(stack: Stack) -> None:
    stack.put(KEY, export_text(notices(5001)))
    stack.drain()
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "rejected"
    assert any(e["loc"] == "posts" and "5,000" in e["message"] for e in outcome["errors"]), outcome["errors"]
    assert stack.store().community("safe-routes") is None
