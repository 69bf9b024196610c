"""The ingest handler, driven by the SQS event JSON Lambda sends, against moto.

Resources come from template.yaml (the same provisioner the local cloud uses), and S3's event
records carry sequencers and version ids as real S3's do.
"""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.integration.conftest import Stack

SAMPLE_EXPORT = (
    "🇲🇿 Floods in Sofala: teams from Beira are delivering water. bit.ly/HLbeira\n\n"
    "Les inscriptions pour les cours de français sont ouvertes à Lyon et à Marseille.\n\n"
    "At least 62 Gambians died off the coast of Mauritania. We remember them. #MissingMigrants\n"
    "Scan QR code to join Community\nSafe Routes\nHelp on the move.\nVerified Community\n222K Members\n"
    "Created In 2020\nScan QR code to join Community\n"
)


def test_a_new_post_is_published_and_enriched(stack: Stack) -> None:
    key = "posts/demo/Hello wörld ☀.txt"
    stack.put(
        key,
        "🇱🇧 Natalie came to Lebanon to earn money for her sibling’s education in Kenya. "
        "Read her story: bit.ly/3hD6tOZ #MigrantWorkers @IOM",
    )
    [response] = stack.drain()
    assert response == {"batchItemFailures": []}
    outcome = stack.outcome(key)
    assert outcome["status"] == "published" and outcome["errors"] == []
    [post] = stack.posts("demo")
    assert post["id"] == outcome["post_ids"][0]
    assert post["key"] == key
    assert post["title"].startswith("🇱🇧 Natalie came to Lebanon")
    assert post["links"] == [{"url": "https://bit.ly/3hD6tOZ", "domain": "bit.ly", "shortener": True}]
    assert post["hashtags"] == ["MigrantWorkers"] and post["mentions"] == ["IOM"]
    assert post["countries"][:2] == ["LB", "KE"] or set(post["countries"]) >= {"LB", "KE"}
    assert post["language"] == "en"
    assert post["version"] == 1 and post["word_count"] > 10 and len(post["content_hash"]) == 64
    assert stack.community("demo")["posts"] == 1
    # one id follows the upload: the outcome, the post (and from there the publisher and the pushes)
    assert outcome["correlation_id"].startswith("s3-") and post["correlation_id"] == outcome["correlation_id"]


def test_reupload_is_an_edit_keeping_created_at(stack: Stack) -> None:
    key = "posts/demo/notice.md"
    stack.put(key, "---\ntitle: Clinic hours\n---\nThe clinic opens at 8.")
    stack.drain()
    [first] = stack.posts("demo")
    stack.put(key, "---\ntitle: Clinic hours\npinned: true\n---\nThe clinic opens at 9 from Monday.")
    stack.drain()
    [second] = stack.posts("demo")
    assert stack.outcome(key)["status"] == "updated"
    assert (second["id"], second["version"], second["created_at"]) == (first["id"], 2, first["created_at"])
    assert second["text"].endswith("at 9 from Monday.") and second["pinned"] is True
    assert stack.community("demo")["posts"] == 1


def test_same_content_again_keeps_the_version(stack: Stack) -> None:
    stack.put("posts/demo/a.txt", "Same words.")
    stack.drain()
    stack.put("posts/demo/a.txt", "Same words.\n")
    stack.drain()
    assert stack.outcome("posts/demo/a.txt")["status"] == "updated"
    assert [p["version"] for p in stack.posts("demo")] == [1]


def test_same_text_under_another_key_is_a_duplicate(stack: Stack) -> None:
    stack.put("posts/demo/original.txt", "Vaccination is free for every child.")
    stack.drain()
    stack.put("posts/demo/copy.json", json.dumps({"text": "Vaccination  is free for every child."}))
    stack.drain()
    outcome = stack.outcome("posts/demo/copy.json")
    assert outcome["status"] == "duplicate"
    assert outcome["duplicate_of"] == stack.outcome("posts/demo/original.txt")["post_ids"][0]
    assert len(stack.posts("demo")) == 1 and stack.community("demo")["posts"] == 1


def test_removing_the_object_deletes_the_post(stack: Stack) -> None:
    stack.put("posts/demo/gone soon.txt", "Short-lived news.")
    stack.drain()
    stack.delete("posts/demo/gone soon.txt")
    stack.drain()
    outcome = stack.outcome("posts/demo/gone soon.txt")
    assert outcome["status"] == "deleted" and len(outcome["post_ids"]) == 1
    assert stack.posts("demo") == [] and stack.community("demo")["posts"] == 0
    # the text is free again: publishing it elsewhere is not a duplicate
    stack.put("posts/demo/again.txt", "Short-lived news.")
    stack.drain()
    assert stack.outcome("posts/demo/again.txt")["status"] == "published"


def test_redelivered_and_out_of_order_events_change_nothing(stack: Stack) -> None:
    key = "posts/demo/ordered.txt"
    stack.put(key, "Version one.")
    first = stack.receive()
    stack.put(key, "Version two, the latest.")
    second = stack.receive()
    # newest first, then the older one, then the newest again (a redelivery)
    for messages in (second, first, second):
        stack.invoke(messages)
    [post] = stack.posts("demo")
    assert post["text"] == "Version two, the latest." and post["version"] == 1
    assert stack.outcome(key)["status"] == "published"
    assert stack.community("demo")["posts"] == 1


def test_a_delete_overtaken_by_its_create_still_wins(stack: Stack) -> None:
    key = "posts/demo/flash.txt"
    stack.put(key, "Here and gone.")
    created = stack.receive()
    stack.delete(key)
    removed = stack.receive()
    stack.invoke(removed)
    stack.invoke(created)
    assert stack.outcome(key)["status"] == "deleted"
    assert stack.posts("demo") == []
    assert stack.store().community("demo") is None  # nothing was ever counted


BAD_INPUTS: dict[str, tuple[bytes, str, str]] = {
    # key suffix: (content, expected loc, words the message must contain)
    "invalid-utf8.txt": (b"caf\xe9 au lait", "line 1", "not valid UTF-8"),
    "empty.txt": (b"   \n", "content", "empty"),
    "oversize.txt": (b"x" * (64 * 1024 + 1), "size", "limit"),
    "wrong-types.json": (b'{"text": "hi", "pinned": "yes"}', "pinned", "valid boolean"),
    "unknown-fields.json": (b'{"text": "hi", "colour": "red"}', "colour", "unknown field"),
    "unparseable.json": (b'{"text": "hi",', "line 1", "not valid JSON"),
    "unsafe-yaml.md": (
        b"---\ntitle: !!python/object/apply:os.system ['id']\n---\nbody",
        "front matter line 2",
        "unsafe or unknown YAML tag",
    ),
    "alias-bomb.md": (
        b"---\na: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n---\nbody",
        "front matter line 3",
        "aliases",
    ),
    "deep.json": (b'{"text": "hi", "tags": ' + b"[" * 200 + b"]" * 200 + b"}", "body", "nested"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "content", "binary"),
    "wrong.pdf": (b"%PDF-1.4", "key", "unsupported extension"),
}


def test_bad_inputs_are_each_rejected_while_the_batch_publishes(stack: Stack) -> None:
    stack.put("posts/demo/good-1.txt", "A good post about schools in Lebanon.")
    for name, (content, _, _) in BAD_INPUTS.items():
        stack.put(f"posts/demo/{name}", content)
    stack.put("posts/demo/good-2.txt", "Another good post about clinics in Chad.")
    responses = stack.drain()
    assert all(r == {"batchItemFailures": []} for r in responses)
    for name, (content, loc, words) in BAD_INPUTS.items():
        key = f"posts/demo/{name}"
        outcome = stack.outcome(key)
        assert outcome["status"] == "rejected", key
        [error] = outcome["errors"]
        assert error["loc"] == loc, (key, error)
        assert words in error["message"], (key, error)
        # nothing is lost: the original and the reasons are kept
        assert stack.read(f"rejected/{key}") == content
        report = json.loads(stack.read(f"rejected/{key}.error.json"))
        assert report["errors"] == outcome["errors"]
    assert {stack.outcome(f"posts/demo/good-{i}.txt")["status"] for i in (1, 2)} == {"published"}
    assert stack.community("demo")["posts"] == 2
    # Herald's own writes under rejected/ never come back as events
    assert stack.receive() == []


def test_test_event_and_unknown_layout(stack: Stack) -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-28T00:00:00.000Z",
        "Bucket": stack.bucket,
        "RequestId": "X",
        "HostId": "Y",
    }
    assert stack.invoke_bodies([json.dumps(test_event)]) == {"batchItemFailures": []}
    assert stack.outcomes() == []


def test_unreadable_message_fails_only_itself(stack: Stack) -> None:
    stack.put("posts/demo/fine.txt", "A fine post.")
    [good] = stack.receive()
    response = stack.invoke_bodies(["not json at all", good["Body"]])
    assert len(response["batchItemFailures"]) == 1
    assert stack.outcome("posts/demo/fine.txt")["status"] == "published"


def test_transient_errors_are_retried_not_rejected(stack: Stack) -> None:
    stack.put("posts/demo/later.txt", "Will be stored once the table is back.")
    messages = stack.receive()
    stack.ddb.delete_table(TableName=stack.table)
    # Every record failed, so the whole batch fails and Lambda leaves the messages on the queue.
    with pytest.raises(BatchProcessingError, match="ResourceNotFoundException"):
        stack.invoke(messages)
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # not deleted: it comes back
    with pytest.raises(stack.s3.exceptions.NoSuchKey):
        stack.s3.get_object(Bucket=stack.bucket, Key="rejected/posts/demo/later.txt")


def test_export_imports_profile_and_posts_once(stack: Stack) -> None:
    key = "exports/safe-routes/page 1.txt"
    stack.put(key, SAMPLE_EXPORT)
    stack.drain()
    outcome = stack.outcome(key)
    assert outcome["status"] == "published"
    assert outcome["counts"] == {"posts": 3, "published": 3, "unchanged": 0, "duplicates": 0, "removed": 0}
    community = stack.community("safe-routes")
    assert (community["name"], community["description"], community["verified"]) == (
        "Safe Routes",
        "Help on the move.",
        True,
    )
    assert (community["members"], community["posts"], community["created_year"]) == (222_000, 3, 2020)
    posts = stack.posts("safe-routes")
    assert {p["language"] for p in posts} == {"en", "fr"}
    assert all(p["notify"] is False and p["source"] == "export" for p in posts)
    by_first_word = {p["text"].split()[1]: p for p in posts}
    assert by_first_word["Floods"]["countries"][0] == "MZ"
    # the same export again: nothing new
    stack.put(key, SAMPLE_EXPORT)
    stack.drain()
    assert stack.outcome(key)["counts"]["unchanged"] == 3
    assert stack.community("safe-routes")["posts"] == 3
    # a new version without the French post: it is removed
    lines = SAMPLE_EXPORT.split("\n\n")
    stack.put(key, lines[0] + "\n\n" + lines[2])
    stack.drain()
    assert stack.outcome(key)["counts"]["removed"] == 1
    assert stack.community("safe-routes")["posts"] == 2
    # deleting the export deletes its posts
    stack.delete(key)
    stack.drain()
    assert stack.outcome(key)["status"] == "deleted"
    assert stack.community("safe-routes")["posts"] == 0 and stack.posts("safe-routes") == []


def test_bad_export_names_the_line(stack: Stack) -> None:
    bad = "A post\n\nScan QR code to join Community\nName\nlots of Members\n"
    stack.put("exports/safe-routes/bad.txt", bad)
    stack.drain()
    outcome = stack.outcome("exports/safe-routes/bad.txt")
    assert outcome["status"] == "rejected"
    [error] = outcome["errors"]
    assert error == {"loc": "line 5", "message": "cannot read a member count from 'lots of Members'"}
