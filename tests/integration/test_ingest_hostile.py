"""Hostile and unlucky uploads, through the real path: an S3 put on moto, the S3 event S3 sends to
the ingest queue, the ingest handler as Lambda calls it with the SQS batch.

Each upload ends in one recorded outcome that names its problem, with the original kept, and the
other uploads of the same batch are published. The tests also check every stored item and key
against DynamoDB's and S3's limits themselves (moto does not enforce S3's 1,024-byte keys).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from herald.core.aws import from_item
from tests.integration.conftest import Stack

MB = 1024 * 1024
GOOD_FIRST = ("posts/demo/good-first.txt", "A good post about the school in Tripoli.")
GOOD_LAST = ("posts/demo/good-last.txt", "Another good post, about the clinic in Abéché.")
EXPORT_TAIL = "Scan QR code to join Community\nSafe Routes\n"


def _links(count: int) -> str:
    return " ".join(f"site{i}.org" for i in range(count))


#: key: (content, expected loc, words the message must hold)
HOSTILE: dict[str, tuple[bytes, str, list[str]]] = {
    "posts/demo/year-one.json": (
        json.dumps({"text": "Old news.", "publish_at": "0001-01-01T00:00:00+23:59"}).encode(),
        "publish_at",
        ["0001-01-01T00:00:00+23:59", "out of range", "1970-01-01", "2100-01-01"],
    ),
    "posts/demo/year-9999.md": (
        b"---\npublish_at: 9999-12-31T23:59:59-23:59\n---\nFar future.",
        "publish_at",
        ["9999-12-31T23:59:59-23:59", "out of range"],
    ),
    "posts/demo/utf16-bom.txt": (
        "Clinic hours: 8 to 16.".encode("utf-16"),
        "content",
        ["UTF-16 is not supported, save as UTF-8"],
    ),
    "posts/demo/utf16-le.txt": (
        "Clinic hours: 8 to 16.".encode("utf-16-le"),
        "content",
        ["UTF-16 is not supported, save as UTF-8"],
    ),
    "posts/demo/utf16-be.md": (
        "مواعيد العيادة من 8 إلى 16".encode("utf-16-be"),
        "content",
        ["UTF-16 is not supported, save as UTF-8"],
    ),
    "posts/demo/bad-utf8.txt": (b"ok\ncaf\xe9", "line 2", ["not valid UTF-8", "offset 6"]),
    "posts/demo/twice.md": (
        b"---\ntitle: First\ntitle: Second\n---\nBody.",
        "front matter line 3",
        ["'title'", "more than once"],
    ),
    "posts/demo/many-links.txt": (_links(1500).encode(), "text", ["1,500 links", "limit is 1,000"]),
    "exports/demo/huge-count.txt": (
        f"A post.\n\n{EXPORT_TAIL}{'1' + '0' * 39} Members\n".encode(),
        "line 5",
        ["40 digits", "10,000,000,000"],
    ),
    "exports/demo/long-description.txt": (
        f"A post.\n\n{EXPORT_TAIL}{'d' * (500 * 1024)}\n".encode(),
        "line 5",
        ["512,000 characters", "limit is 2,000"],
    ),
    "exports/demo/long-line.txt": (
        f"A post.\n\n{EXPORT_TAIL}Description.\n{'x' * (1024 * 1024)}\n".encode(),
        "line 6",
        ["unexpected line", "1,048,576 characters"],
    ),
    # 30 unknown fields with names of 2,000 characters: the outcome records 20 problems, each cut.
    "posts/demo/wide-fields.json": (
        json.dumps({"text": "Hi.", **{f"f{i:02}" + "x" * 1997: 1 for i in range(30)}}).encode(),
        "f00" + "x" * 196 + "…",
        ["unknown field 'f00xxx", "… (2,000 characters)", "allowed fields are text"],
    ),
    # A community id with a trailing newline, or a control character: not a community.
    "posts/demo\n/line-end.txt": (b"Text.", "key", ["'demo\\n'", "not a valid id"]),
    "posts/de\x07mo/bell.txt": (b"Text.", "key", ["'de\\x07mo'", "not a valid id"]),
    "posts/demo/bell\x07.txt": (b"Text.", "key", ["control character (U+0007)"]),
}


def _collect(stack: Stack) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := stack.receive():
        messages.extend(batch)
    return messages


def _item_bytes(value: Any) -> int:
    """DynamoDB's count of an item's size: names and values in UTF-8, numbers by their digits,
    3 bytes for a list or map plus 1 per element (an oracle independent of Herald's own)."""
    if isinstance(value, dict):
        return sum(len(k.encode()) + _item_bytes(v) for k, v in value.items())
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return len(str(value).strip("-0").replace(".", "")) // 2 + 2
    if isinstance(value, list):
        return 3 + sum(1 + _item_bytes(v) for v in value)
    raise AssertionError(f"unexpected stored value {value!r}")


def _assert_fits_aws_limits(stack: Stack) -> None:
    """Every item in the content table within DynamoDB's limits (which moto does not enforce)."""
    paginator = stack.ddb.get_paginator("scan")
    for page in paginator.paginate(TableName=stack.table):
        for raw in page["Items"]:
            item = from_item(raw)
            assert _item_bytes(item) <= 400 * 1024, item["pk"][:80]
            assert len(item["pk"].encode()) <= 2048
            for sort in ("sk", "gsi1sk"):
                if sort in item:
                    assert len(item[sort].encode()) <= 1024, (item["pk"][:80], sort)


def _assert_rejected(stack: Stack, key: str, content: bytes, loc: str, words: list[str]) -> dict[str, Any]:
    outcome = stack.outcome(key)
    assert outcome["status"] == "rejected", (key, outcome)
    error = outcome["errors"][0]
    assert error["loc"] == loc, (key, error)
    for word in words:
        assert word in error["message"], (key, word, error)
    # the original is kept, beside the reasons, under rejected/ and within S3's 1,024-byte keys
    copy = outcome["rejected_copy"]
    report_key = f"{copy}.error.json"
    assert copy.startswith("rejected/posts/" if key.startswith("posts/") else "rejected/exports/")
    assert len(report_key.encode()) <= 1024
    if len(f"rejected/{key}.error.json".encode()) <= 1024:
        assert copy == f"rejected/{key}"
    assert stack.read(copy) == content
    report = json.loads(stack.read(report_key))
    assert report["errors"] == outcome["errors"] and report["original"] == copy
    return outcome


@pytest.mark.parametrize("key", list(HOSTILE), ids=[k.encode("unicode_escape").decode() for k in HOSTILE])
def test_a_hostile_upload_is_rejected_truthfully_and_its_batch_goes_on(stack: Stack, key: str) -> None:
    content, loc, words = HOSTILE[key]
    stack.put(*GOOD_FIRST)
    stack.put(key, content)
    stack.put(*GOOD_LAST)
    messages = _collect(stack)
    assert len(messages) == 3

    # One SQS batch: nothing in it fails, so nothing is retried or parked in the DLQ.
    assert stack.invoke(messages) == {"batchItemFailures": []}

    _assert_rejected(stack, key, content, loc, words)
    assert stack.outcome(GOOD_FIRST[0])["status"] == "published"
    assert stack.outcome(GOOD_LAST[0])["status"] == "published"
    assert stack.community("demo")["posts"] == 2
    _assert_fits_aws_limits(stack)


def test_a_50_mb_object_is_rejected_with_its_real_size_unread(stack: Stack) -> None:
    key = "posts/demo/huge.txt"
    content = b"x" * (50 * MB)
    stack.put(key, content)
    stack.put(*GOOD_LAST)
    messages = _collect(stack)
    body = json.loads(messages[0]["Body"])
    assert body["Records"][0]["s3"]["object"]["size"] == 50 * MB  # what the check relies on

    assert stack.invoke(messages) == {"batchItemFailures": []}

    _assert_rejected(
        stack, key, content, "size", ["the post is 52,428,800 bytes", "the limit is 65,536 bytes"]
    )
    assert stack.outcome(GOOD_LAST[0])["status"] == "published"


@pytest.mark.parametrize("key_bytes", [1000, 1024])
def test_a_key_near_s3s_limit_is_rejected_and_its_outcome_stored(stack: Stack, key_bytes: int) -> None:
    prefix, suffix = "posts/demo/", ".txt"
    filler = key_bytes - len(prefix) - len(suffix)
    name = "é" * (filler // 2) + "e" * (filler % 2)  # two bytes a character: clipping must not split one
    key = f"{prefix}{name}{suffix}"
    assert len(key.encode()) == key_bytes
    stack.put(key, "A post with a very long name.")
    stack.put(*GOOD_LAST)

    assert stack.invoke(_collect(stack)) == {"batchItemFailures": []}

    outcome = _assert_rejected(
        stack,
        key,
        b"A post with a very long name.",
        "key",
        [f"the key is {key_bytes:,} bytes", "limit is 991 bytes"],
    )
    # the outcome is listed (the index's sort key is within DynamoDB's 1,024 bytes)
    assert key in [o["key"] for o in stack.outcomes()] and outcome["key"] == key
    _assert_fits_aws_limits(stack)
    assert stack.outcome(GOOD_LAST[0])["status"] == "published"


def test_keys_outside_the_notified_prefixes_never_reach_ingest(stack: Stack) -> None:
    # The bucket notifies only for posts/ and exports/, and S3's prefix filters are case-sensitive.
    for key in ("misc/notes.txt", "Posts/demo/capital.txt", "EXPORTS/demo/page.txt", "post/demo/x.txt"):
        stack.put(key, "Text.")
    assert stack.receive() == []
    assert stack.outcomes() == []


def test_a_fault_in_herald_on_one_upload_is_a_rejection_not_a_retry(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug (here, an enricher that fails on one text) must neither loop the message into the DLQ
    nor stop the batch: the upload is rejected as an internal error, kept, logged and counted."""
    from herald.enrichment.pipeline import enrich
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.adapters.s3_objects import S3ObjectStore
    from herald.ingest.service import IngestService

    def enricher(text: str, **kwargs: Any) -> Any:
        if "trigger" in text:
            raise ZeroDivisionError("division by zero")
        return enrich(text, **kwargs)

    service = IngestService(
        objects=S3ObjectStore(stack.s3), content=DynamoContentStore(stack.table, stack.ddb), enricher=enricher
    )
    # The handler's composition root hands out this service (with the enricher above) instead.
    monkeypatch.setattr(stack.handler, "ingest_service", functools.cache(lambda: service))
    stack.put("posts/demo/bug.txt", "This text will trigger the fault.")
    stack.put(*GOOD_LAST)
    capsys.readouterr()

    assert stack.invoke(_collect(stack)) == {"batchItemFailures": []}

    outcome = _assert_rejected(
        stack,
        "posts/demo/bug.txt",
        b"This text will trigger the fault.",
        "internal",
        ["internal error (ZeroDivisionError)"],
    )
    assert "reprocessed" in outcome["errors"][0]["message"]
    assert stack.outcome(GOOD_LAST[0])["status"] == "published"
    # surfaced: an error log with the traceback, and the IngestFaults metric the alarm watches
    [fault] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert fault.exc_info is not None and fault.exc_info[0] is ZeroDivisionError
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(line.get("IngestFaults") == [1.0] for line in lines if "_aws" in line)


def test_many_problems_are_recorded_bounded(stack: Stack) -> None:
    posts = "\n\n".join("y" * (65 * 1024) for _ in range(30))
    key = "exports/demo/thirty-too-long.txt"
    stack.put(key, f"{posts}\n\n{EXPORT_TAIL}")
    assert stack.invoke(_collect(stack)) == {"batchItemFailures": []}
    outcome = stack.outcome(key)
    assert outcome["status"] == "rejected"
    assert len(outcome["errors"]) == 20
    assert outcome["errors"][0]["loc"] == "line 1" and "66,560 bytes" in outcome["errors"][0]["message"]
    assert outcome["errors"][-1] == {"loc": "more", "message": "and 11 more problems of the same kinds"}
    _assert_fits_aws_limits(stack)
