"""Duplicates follow their original: a key edited into another post's text gives up its own old
text, and when the original goes, the oldest duplicate waiting for the text takes its place.
Real S3 events on moto."""

from __future__ import annotations

from tests.integration.conftest import Stack
from tests.integration.ingest_rig import export_text, notices, table_items

A, B, C = "posts/demo/a.txt", "posts/demo/b.txt", "posts/demo/c.md"
TEXT = "Vaccination is free for every child under five."


def _texts(stack: Stack, community: str = "demo") -> list[str]:
    return sorted(p["text"] for p in stack.posts(community))


def test_editing_a_post_into_anothers_text_removes_its_old_text(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.put(B, "The clinic opens at 8.")
    stack.drain()
    stack.put(B, TEXT)
    stack.drain()
    outcome = stack.outcome(B)
    assert outcome["status"] == "duplicate"
    assert outcome["duplicate_of"] == stack.outcome(A)["post_ids"][0]
    assert "removed" in outcome["detail"]
    assert _texts(stack) == [TEXT]
    assert stack.community("demo")["posts"] == 1
    # the old text is free again for anyone
    stack.put("posts/demo/other.txt", "The clinic opens at 8.")
    stack.drain()
    assert stack.outcome("posts/demo/other.txt")["status"] == "published"


def test_the_duplicate_takes_the_place_of_its_deleted_original(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.drain()
    stack.put(C, f"---\ntitle: Free vaccination\ntags: [health]\n---\n{TEXT}")
    stack.drain()
    assert stack.outcome(C)["status"] == "duplicate"
    stack.delete(A)
    messages = stack.receive()
    stack.invoke(messages)
    deleted = stack.outcome(A)
    assert deleted["status"] == "deleted" and C in deleted["detail"]
    promoted = stack.outcome(C)
    assert promoted["status"] == "published" and promoted["duplicate_of"] is None
    [post] = stack.posts("demo")
    assert post["id"] == promoted["post_ids"][0] and post["key"] == C
    assert post["title"] == "Free vaccination" and post["tags"] == ["health"]
    assert post["notify"] is False, "members were told about this text with the original"
    assert stack.community("demo")["posts"] == 1
    # a redelivery of the delete changes nothing
    stack.invoke(messages)
    assert len(stack.posts("demo")) == 1 and stack.community("demo")["posts"] == 1
    # and the promoted post is an ordinary post of its key: deleting it removes it
    stack.delete(C)
    stack.drain()
    assert stack.posts("demo") == [] and stack.community("demo")["posts"] == 0


def test_the_oldest_duplicate_goes_first_and_the_next_waits_for_it(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.drain()
    stack.put(B, TEXT)
    stack.drain()
    stack.put(C, TEXT)
    stack.drain()
    stack.delete(A)
    stack.drain()
    assert stack.outcome(B)["status"] == "published"
    assert stack.outcome(C)["status"] == "duplicate"
    stack.delete(B)
    stack.drain()
    assert stack.outcome(C)["status"] == "published"
    [post] = stack.posts("demo")
    assert post["key"] == C and stack.community("demo")["posts"] == 1


def test_a_deleted_duplicate_no_longer_waits(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.drain()
    stack.put(B, TEXT)
    stack.drain()
    stack.delete(B)
    stack.drain()
    assert "no longer wait" in stack.outcome(B)["detail"]
    stack.delete(A)
    stack.drain()
    assert stack.outcome(B)["status"] == "deleted"
    assert stack.posts("demo") == [] and stack.community("demo")["posts"] == 0
    assert table_items(stack, "KEY#") == []
    assert [i for i in table_items(stack, "C#demo") if i["sk"]["S"].startswith(("DUP#", "HASH#"))] == []


def test_a_duplicate_edited_to_new_text_is_published_and_no_longer_waits(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.drain()
    stack.put(B, TEXT)
    stack.drain()
    stack.put(B, "Schools reopen on Monday.")
    stack.drain()
    assert stack.outcome(B)["status"] == "published"
    stack.delete(A)
    stack.drain()
    assert _texts(stack) == ["Schools reopen on Monday."]
    assert stack.community("demo")["posts"] == 1


def test_an_original_edited_to_new_text_hands_its_old_text_to_the_duplicate(stack: Stack) -> None:
    stack.put(A, TEXT)
    stack.drain()
    stack.put(B, TEXT)
    stack.drain()
    stack.put(A, "Vaccination is free for every child under twelve.")
    stack.drain()
    assert stack.outcome(B)["status"] == "published"
    assert _texts(stack) == sorted([TEXT, "Vaccination is free for every child under twelve."])
    assert stack.community("demo")["posts"] == 2


def test_a_single_post_takes_the_place_of_an_export_post_the_export_drops(stack: Stack) -> None:
    key = "exports/demo/page.txt"
    posts = notices(3)
    stack.put(key, export_text(posts))
    stack.drain()
    stack.put(B, posts[1])
    stack.drain()
    assert stack.outcome(B)["status"] == "duplicate"
    stack.put(key, export_text([posts[0], posts[2]]))
    stack.drain()
    assert stack.outcome(key)["counts"]["removed"] == 1
    assert stack.outcome(B)["status"] == "published"
    assert _texts(stack) == sorted(posts) and stack.community("demo")["posts"] == 3


def test_an_export_post_takes_the_place_of_a_deleted_single_post(stack: Stack) -> None:
    key = "exports/demo/page.txt"
    posts = notices(3)
    stack.put(A, posts[0])
    stack.drain()
    stack.put(key, export_text(posts))
    stack.drain()
    assert stack.outcome(key)["counts"]["duplicates"] == 1
    assert stack.community("demo")["posts"] == 3
    stack.delete(A)
    stack.drain()
    outcome = stack.outcome(key)
    assert outcome["counts"]["published"] == 3 and outcome["counts"]["duplicates"] == 0
    assert len(outcome["post_ids"]) == 3
    assert {p["key"] for p in stack.posts("demo")} == {key}
    assert _texts(stack) == sorted(posts) and stack.community("demo")["posts"] == 3
    # deleting the export now removes that post too
    stack.delete(key)
    stack.drain()
    assert stack.posts("demo") == [] and stack.community("demo")["posts"] == 0
