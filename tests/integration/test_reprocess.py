"""Reprocessing: ``herald reprocess`` sends stored objects through ingest again.

A reprocess event carries the key's recorded sequencer and the object's current version and is
marked ``heraldReprocess``; ingest runs it again only while both still match the recorded outcome,
so it refreshes what was derived from the same content and never wins over a newer event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from herald_tools import ops
from herald_tools.stack import Target
from tests.integration.conftest import REGION, Stack
from tests.integration.test_ingest_handler import SAMPLE_EXPORT

KEY = "posts/demo/clinic hours.txt"
TEXT = "The clinic in Beira opens at 8 from Monday. #Health"


def target(stack: Stack) -> Target:
    return Target(
        stack_name="herald-local",
        outputs={
            "UploadsBucketName": stack.bucket,
            "IngestQueueUrl": stack.queue_url,
            "ContentTableName": stack.table,
        },
        region=REGION,
    )


def reprocess_body(stack: Stack, key: str) -> str:
    """The message ``herald reprocess`` sends for ``key``, built from the object and its outcome now."""
    head = stack.s3.head_object(Bucket=stack.bucket, Key=key)
    recorded = stack.store().outcome(key)
    return ops.reprocess_message(
        bucket=stack.bucket,
        key=key,
        size=head["ContentLength"],
        etag=head["ETag"],
        version_id=head["VersionId"],
        sequencer=recorded.sequencer if recorded else ops.NO_SEQUENCER,
        region=REGION,
    )


def fix_enrichment(stack: Stack, monkeypatch: pytest.MonkeyPatch, topic: str) -> None:
    """Stand in for a bug fix in enrichment: every post now also gets ``topic``."""
    from herald.enrichment import pipeline

    original = pipeline.enrich

    def fixed(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        return result.model_copy(update={"topics": [*result.topics, topic]})

    monkeypatch.setattr(pipeline, "enrich", fixed)
    stack.handler.ingest_service.cache_clear()


def test_reprocess_reruns_enrichment_for_the_same_version(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    before = stack.outcome(KEY)
    [post] = stack.posts("demo")
    fix_enrichment(stack, monkeypatch, "clinics")
    result = ops.reprocess(target(stack), "posts/demo/")
    assert (result["objects"], result["sent"], result["skipped"], result["failed"]) == (1, 1, 0, 0)
    [response] = stack.drain()
    assert response == {"batchItemFailures": []}
    [again] = stack.posts("demo")
    assert again["id"] == post["id"] and again["version"] == 2 and "clinics" in again["topics"]
    assert again["created_at"] == post["created_at"]
    after = stack.outcome(KEY)
    assert after["status"] == "updated" and after["detail"] == "version 2"
    assert (after["sequencer"], after["version_id"]) == (before["sequencer"], before["version_id"])
    assert stack.community("demo")["posts"] == 1


def test_reprocess_without_a_fix_changes_no_post_and_no_counter(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.put("posts/demo/copy.txt", TEXT)  # a duplicate stays a duplicate
    stack.drain()
    posts, community = stack.posts("demo"), stack.community("demo")
    for _ in range(2):  # twice: a reprocess delivered twice is harmless too
        ops.reprocess(target(stack), "posts/demo/")
        stack.drain()
    assert stack.posts("demo") == posts
    assert stack.community("demo")["posts"] == community["posts"] == 1
    assert stack.outcome(KEY)["detail"] == "content unchanged; version 1 kept"
    assert stack.outcome("posts/demo/copy.txt")["status"] == "duplicate"


def test_the_recorded_event_without_the_marker_is_still_superseded(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    before = stack.outcome(KEY)
    body = json.loads(reprocess_body(stack, KEY))
    del body["heraldReprocess"]
    assert stack.invoke_bodies([json.dumps(body)]) == {"batchItemFailures": []}
    assert stack.outcome(KEY) == before


def test_a_reprocess_never_wins_over_a_newer_upload(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    stale = reprocess_body(stack, KEY)  # built for version 1
    stack.put(KEY, TEXT + " Closed on Sundays.")
    newer = [m["Body"] for m in stack.receive()]
    # The newer upload is processed first: the reprocess of version 1 comes too late.
    stack.invoke_bodies(newer)
    stack.invoke_bodies([stale])
    [post] = stack.posts("demo")
    assert post["version"] == 2 and post["text"].endswith("Closed on Sundays.")
    assert stack.outcome(KEY)["detail"] == "version 2"
    assert stack.community("demo")["posts"] == 1


def test_a_reprocess_run_before_a_pending_newer_upload_does_not_hold_it_back(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    stale = reprocess_body(stack, KEY)
    stack.put(KEY, TEXT + " Closed on Sundays.")
    newer = [m["Body"] for m in stack.receive()]
    stack.invoke_bodies([stale])  # re-runs version 1 (the version it names), changing nothing
    assert stack.posts("demo")[0]["version"] == 1
    stack.invoke_bodies(newer)
    [post] = stack.posts("demo")
    assert post["version"] == 2 and post["text"].endswith("Closed on Sundays.")


def test_the_cli_skips_a_key_whose_newer_version_is_still_to_be_ingested(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    stack.put(KEY, TEXT + " Closed on Sundays.")  # its event waits in the queue
    result = ops.reprocess(target(stack), "posts/demo/")
    assert (result["sent"], result["skipped"]) == (0, 1)
    assert "still to come" in result["items"][0]["reason"]
    stack.drain()
    assert stack.posts("demo")[0]["version"] == 2


def test_a_key_whose_event_was_lost_is_published_once(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    [lost] = stack.receive()  # the event never reaches ingest (say it expired in the DLQ)
    stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=lost["ReceiptHandle"])
    ops.reprocess(target(stack), "posts/demo/")
    stack.drain()
    assert stack.outcome(KEY)["status"] == "published"
    assert stack.community("demo")["posts"] == 1
    stack.invoke_bodies([lost["Body"]])  # it turns up after all: the same content, nothing changes
    assert [p["version"] for p in stack.posts("demo")] == [1]
    assert stack.community("demo")["posts"] == 1


def test_the_marker_on_a_removal_event_changes_nothing(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    before = stack.outcome(KEY)
    body = json.loads(reprocess_body(stack, KEY))
    body["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    stack.invoke_bodies([json.dumps(body)])
    assert stack.outcome(KEY) == before
    assert stack.community("demo")["posts"] == 1


def test_reprocessing_an_export_keeps_its_posts_and_counts(stack: Stack) -> None:
    key = "exports/routes/page.txt"
    stack.put(key, SAMPLE_EXPORT)
    stack.drain()
    posts, before = stack.posts("routes"), stack.outcome(key)
    result = ops.reprocess(target(stack), "exports/routes/")
    assert result["sent"] == 1
    stack.drain()
    after = stack.outcome(key)
    assert stack.posts("routes") == posts and stack.community("routes")["posts"] == len(posts) == 3
    assert after["post_ids"] == before["post_ids"]
    assert after["counts"] == {**before["counts"], "published": 0, "unchanged": 3}


def test_the_message_is_shaped_as_s3_sends_it(stack: Stack) -> None:
    stack.put(KEY, TEXT)
    stack.drain()
    document = json.loads(reprocess_body(stack, KEY))
    [record] = document["Records"]
    assert document["heraldReprocess"] is True
    assert (record["eventVersion"], record["eventSource"], record["eventName"]) == (
        "2.1",
        "aws:s3",
        "ObjectCreated:Put",
    )
    assert record["s3"]["bucket"] == {
        "name": stack.bucket,
        "ownerIdentity": {"principalId": ""},
        "arn": f"arn:aws:s3:::{stack.bucket}",
    }
    obj = record["s3"]["object"]
    assert obj["key"] == "posts/demo/clinic+hours.txt"
    assert obj["size"] == len(TEXT.encode()) and '"' not in obj["eTag"]
    assert obj["versionId"] == stack.outcome(KEY)["version_id"]
    assert obj["sequencer"] == stack.outcome(KEY)["sequencer"]


def test_reprocess_refuses_a_prefix_ingest_does_not_read(stack: Stack) -> None:
    with pytest.raises(SystemExit, match="posts/ and exports/"):
        ops.reprocess(target(stack), "rejected/")
