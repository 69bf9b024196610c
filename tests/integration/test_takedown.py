"""A key can always be taken down: deleting it removes every post it ever published, and a
re-upload removes the posts it no longer holds, whatever the last outcome says (a half-imported
export, a rejected re-upload). Real S3 events on moto."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Stack
from tests.integration.ingest_rig import dynamodb_fails_after, export_text, notices, table_items

KEY = "exports/safe-routes/page.txt"


def _half_import(stack: Stack, posts: list[str]) -> int:
    """Upload an export whose import dies part-way (AWS stops answering): some posts stored, no outcome."""
    stack.put(KEY, export_text(posts))
    messages = stack.receive()
    with dynamodb_fails_after(1), pytest.raises(Exception, match="Could not connect"):
        stack.invoke(messages)
    stored = len(stack.posts("safe-routes"))
    assert 0 < stored < len(posts)
    assert stack.store().outcome(KEY) is None
    return stored


def test_deleting_a_half_imported_export_removes_every_post(stack: Stack) -> None:
    _half_import(stack, notices(60))
    stack.delete(KEY)
    stack.drain()
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "deleted"
    assert stack.posts("safe-routes") == [] and stack.community("safe-routes")["posts"] == 0
    assert table_items(stack, "KEY#") == [], "nothing is left of what the key published"


def test_a_reupload_after_a_half_import_keeps_only_what_it_holds(stack: Stack) -> None:
    _half_import(stack, notices(60))
    kept = notices(2, start=500)
    stack.put(KEY, export_text(kept))
    stack.drain()
    assert stack.outcome(KEY)["status"] == "published"
    assert sorted(p["text"] for p in stack.posts("safe-routes")) == sorted(kept)
    assert stack.community("safe-routes")["posts"] == 2


def test_a_rejected_reupload_then_delete_removes_the_old_posts(stack: Stack) -> None:
    stack.put(KEY, export_text(notices(3)))
    stack.drain()
    stack.put(KEY, "A post\n\nScan QR code to join Community\nName\nlots of Members\n")
    stack.drain()
    assert stack.outcome(KEY)["status"] == "rejected"
    assert len(stack.posts("safe-routes")) == 3, "a rejected re-upload leaves the published posts"
    stack.delete(KEY)
    stack.drain()
    outcome = stack.outcome(KEY)
    assert outcome["status"] == "deleted" and len(outcome["post_ids"]) == 3
    assert stack.posts("safe-routes") == [] and stack.community("safe-routes")["posts"] == 0


def test_a_reupload_that_drops_posts_after_a_rejection_removes_them(stack: Stack) -> None:
    posts = notices(3)
    stack.put(KEY, export_text(posts))
    stack.drain()
    stack.put(KEY, export_text(posts).replace("12K Members", "lots of Members"))
    stack.drain()
    assert stack.outcome(KEY)["status"] == "rejected"
    stack.put(KEY, export_text(posts[:1]))
    stack.drain()
    outcome = stack.outcome(KEY)
    assert outcome["counts"]["removed"] == 2
    assert [p["text"] for p in stack.posts("safe-routes")] == posts[:1]
    assert stack.community("safe-routes")["posts"] == 1


def test_a_single_post_rejected_on_edit_is_still_taken_down(stack: Stack) -> None:
    key = "posts/safe-routes/notice.json"
    stack.put(key, '{"text": "Water points are open."}')
    stack.drain()
    stack.put(key, '{"text": "Water points are open.", "pinned": "yes"}')
    stack.drain()
    assert stack.outcome(key)["status"] == "rejected"
    stack.delete(key)
    stack.drain()
    assert stack.outcome(key)["status"] == "deleted"
    assert stack.posts("safe-routes") == [] and stack.community("safe-routes")["posts"] == 0
