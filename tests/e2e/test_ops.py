"""The on-call commands (status, outcome, rejected, redrive, reprocess) against a real local cloud.

One local cloud serves the module; each test works in its own community. The CLI's ``main`` runs
in-process with ``--endpoint-url``, as an engineer would run it against ``herald local``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_tools import ops
from herald_tools.cli import _publish_outputs, main
from herald_tools.localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    logs = tmp_path_factory.mktemp("ops") / "functions.log"
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=str(logs)).start(
        port=0, api_port=0
    ) as started:
        _publish_outputs(started)
        yield started


class Cli:
    """``herald …`` in-process against the local cloud: exit code, stdout, stderr."""

    def __init__(self, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
        self.cloud, self.capsys = cloud, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, "--endpoint-url", self.cloud.endpoint_url])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self(*args, "--json")
        assert code in (0, 1), err
        return json.loads(out)


@pytest.fixture
def herald(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cloud, capsys)


def put(cloud: LocalCloud, key: str, body: str) -> None:
    cloud.client("s3").put_object(Bucket=cloud.resources.uploads_bucket, Key=key, Body=body.encode())


def settle(cloud: LocalCloud) -> None:
    cloud.wait_until_idle(timeout=60)


def poll(cloud: LocalCloud, condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Until ``condition()`` holds, waking up whenever an event source settles a batch."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        cloud.wait_for_activity(timeout=0.5)


def dlq_size(cloud: LocalCloud) -> int:
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.resources.ingest_dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def store(cloud: LocalCloud) -> Any:
    from herald.ingest.adapters.dynamo_content import DynamoContentStore

    return DynamoContentStore(cloud.resources.content_table, cloud.client("dynamodb"))


def ingest_dlq(status: dict[str, Any]) -> dict[str, Any]:
    [queue] = [q for q in status["queues"] if q["output"] == "IngestDeadLetterQueueUrl"]
    return queue


# -- outcome, rejected, status ---------------------------------------------------------------------


def test_outcome_says_what_happened_to_an_upload(cloud: LocalCloud, herald: Cli) -> None:
    key = "posts/ops-outcome/Opening hours ☀.txt"
    put(cloud, key, "The centre in Beira opens at 9 on Monday. #Welcome")
    settle(cloud)
    code, out, _ = herald("outcome", key)
    assert code == 0
    assert out.splitlines()[0] == key
    assert re.search(r"status:\s+published", out) and re.search(r"community:\s+ops-outcome", out)
    for label in ("post ids:", "event time:", "processed at:", "sequencer:", "version id:"):
        assert label in out
    data = herald.json("outcome", key)
    assert data["key"] == key and data["status"] == "published" and len(data["post_ids"]) == 1
    assert data["version_id"] and data["sequencer"] and data["processed_at"].endswith("Z")

    code, out, err = herald("outcome", "posts/ops-outcome/never-uploaded.txt")
    assert code == 1 and out == ""
    assert "no outcome recorded for 'posts/ops-outcome/never-uploaded.txt'" in err


def test_rejected_lists_a_bad_upload_with_its_reason(cloud: LocalCloud, herald: Cli) -> None:
    key = "posts/ops-rejected/bad.json"
    put(cloud, key, '{"text": 5}')
    put(cloud, "posts/ops-rejected/good.txt", "Fine words about the clinic in Nairobi.")
    settle(cloud)
    code, out, _ = herald("rejected", "--since", "1h")
    assert code == 0
    assert key in out and "posts/ops-rejected/good.txt" not in out
    assert "✗ text: Input should be a valid string" in out
    assert f"rejected/{key}" in out  # where the original is kept
    data = herald.json("rejected", "--since", "1h")
    [found] = [r for r in data["rejected"] if r["key"] == key]
    assert found["errors"][0]["loc"] == "text"
    assert found["error_report_url"].endswith(f"rejected/{key}.error.json")
    text = herald("outcome", key)[1]
    assert "✗ text: Input should be a valid string" in text and "rejected copy:" in text


def test_status_shows_queues_outcomes_and_alarms(cloud: LocalCloud, herald: Cli) -> None:
    key = "posts/ops-status/note.txt"
    put(cloud, key, "A short note about the bus to Amman.")
    settle(cloud)
    data = herald.json("status")
    assert {q["output"] for q in data["queues"]} >= {"IngestQueueUrl", "IngestDeadLetterQueueUrl"}
    dlq = ingest_dlq(data)
    assert dlq["dead_letter"] and (dlq["visible"], dlq["in_flight"], dlq["delayed"]) == (0, 0, 0)
    assert key in [o["key"] for o in data["outcomes"]["recent"]]
    assert data["outcomes"]["by_status"].get("published", 0) >= 1
    assert data["alarms"] == [] and data["healthy"] is True
    code, out, _ = herald("status", "--check")
    assert code == 0
    assert "IngestDeadLetterQueue (DLQ)" in out and key in out and out.rstrip().endswith("OK")

    cloudwatch = cloud.client("cloudwatch")
    alarm = "herald-dev-IngestErrorsAlarm"
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="1 error in 5 minutes")
    try:
        code, out, _ = herald("status", "--check")
        assert code == 1
        assert f"✗ {alarm}" in out and "1 error in 5 minutes" in out
        assert [a["name"] for a in herald.json("status")["alarms"]] == [alarm]
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test over")
    assert herald("status", "--check")[0] == 0


# -- the poison message ----------------------------------------------------------------------------


def test_a_poison_message_is_parked_redriven_after_the_fix_and_published_once(
    cloud: LocalCloud, herald: Cli
) -> None:
    # An upload event whose object cannot be read yet: its bucket does not exist (say, a bucket
    # being migrated). Every attempt fails with NoSuchBucket, a transient error, so SQS retries it.
    community, missing_bucket = "ops-poison", "herald-ops-poison-late-bucket"
    key = f"posts/{community}/Evacuation notice.txt"
    body = json.loads(
        ops.reprocess_message(
            bucket=missing_bucket,
            key=key,
            size=52,
            etag="0" * 32,
            version_id=None,
            sequencer="1A2B3C",
            region="us-east-1",
        )
    )
    del body["heraldReprocess"]  # an ordinary S3 event
    cloud.client("sqs").send_message(QueueUrl=cloud.resources.ingest_queue_url, MessageBody=json.dumps(body))

    # 1. After five receives it lands in the dead-letter queue.
    poll(cloud, lambda: dlq_size(cloud) == 1, "the message to reach the DLQ")
    settle(cloud)
    assert store(cloud).outcome(key) is None

    # 2. herald status shows it, and --check fails.
    data = herald.json("status")
    assert ingest_dlq(data)["visible"] == 1 and data["healthy"] is False
    code, out, _ = herald("status", "--check")
    assert code == 1 and "herald redrive ingest" in out

    # A dry run says what would move, and moves nothing.
    code, out, _ = herald("redrive", "ingest", "--dry-run")
    assert code == 0
    assert re.search(r"would move 1 message\(s\) from \S*IngestDeadLetterQueue\S* to \S*IngestQueue", out)
    assert f"ObjectCreated:Put {key}" in out
    assert dlq_size(cloud) == 1

    # 3. The cause is fixed: the bucket exists and holds the object.
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=missing_bucket)
    s3.put_object(Bucket=missing_bucket, Key=key, Body=b"Leave the coast road before 6 pm. #Evacuation")

    # 4. herald redrive ingest brings it back.
    code, out, err = herald("redrive", "ingest")
    assert code == 0, err
    assert re.search(
        r"^moved 1 message\(s\) from \S*IngestDeadLetterQueue\S* to \S*IngestQueue\S*$", out, re.M
    )
    assert "moved 1/1" in err

    # 5. It is published once.
    poll(cloud, lambda: store(cloud).outcome(key) is not None, "the redriven message to be ingested")
    settle(cloud)
    outcome = herald.json("outcome", key)
    assert outcome["status"] == "published"
    assert [p.key for p in store(cloud).community_posts(community)] == [key]
    found = store(cloud).community(community)
    assert found is not None and found.posts == 1
    assert dlq_size(cloud) == 0 and herald("status", "--check")[0] == 0


def test_redrive_dry_run_moves_nothing(cloud: LocalCloud, herald: Cli) -> None:
    sqs = cloud.client("sqs")
    dlq = cloud.resources.ingest_dlq_url
    sqs.send_message(QueueUrl=dlq, MessageBody="not an S3 event at all")
    try:
        data = herald.json("redrive", "ingest", "--dry-run")
        assert data["dry_run"] is True and data["would_move"] == 1 and data["moved"] == 0
        assert data["samples"][0]["summary"] == "not an S3 event at all"
        assert dlq_size(cloud) == 1
    finally:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert dlq_size(cloud) == 0


def test_redrive_of_an_unknown_queue_says_which_exist(herald: Cli) -> None:
    with pytest.raises(SystemExit, match=r"no dead-letter queue named 'pusher' \(known: ingest"):
        herald("redrive", "pusher")


# -- reprocess -------------------------------------------------------------------------------------


def test_reprocess_changes_nothing_visible_and_says_what_it_did(cloud: LocalCloud, herald: Cli) -> None:
    community = "ops-rerun"
    put(cloud, f"posts/{community}/one.md", "---\ntitle: One\n---\nThe first notice, about Lyon.")
    put(cloud, f"posts/{community}/two.txt", "The second notice, about the ferry to Mytilene.")
    settle(cloud)
    before = herald.json("report")
    posts = [p for p in before["posts"] if p["community"] == community]
    assert len(posts) == 2

    code, out, err = herald("reprocess", f"posts/{community}/", "--dry-run")
    assert code == 0 and out.startswith("dry run: would send 2 of 2 object(s)")
    settle(cloud)

    code, out, err = herald("reprocess", f"posts/{community}/")
    assert code == 0, err
    assert out.startswith(
        f"sent 2 of 2 object(s) under s3://{cloud.resources.uploads_bucket}/posts/{community}/"
    )
    assert "reprocess 1/2" in err and "reprocess 2/2" in err
    settle(cloud)
    after = herald.json("report")
    assert [p for p in after["posts"] if p["community"] == community] == posts  # ids, versions, times
    [entry] = [c for c in after["communities"] if c["id"] == community]
    assert entry["posts"] == 2
    outcome = herald.json("outcome", f"posts/{community}/two.txt")
    assert outcome["detail"] == "content unchanged; version 1 kept"


# -- AWS paths, with stand-in clients (no account) ------------------------------------------------


class FakeSqs:
    """Just enough SQS for a redrive: a DLQ, its source, and sends that fail for chosen bodies."""

    def __init__(self, dlq: list[str], refuse: str = "") -> None:
        self.queues: dict[str, list[dict[str, Any]]] = {
            "https://sqs/1/app-IngestDeadLetterQueue": [
                {
                    "MessageId": f"m{i}",
                    "ReceiptHandle": f"r{i}",
                    "Body": body,
                    "MessageAttributes": {"trace": {"DataType": "String", "StringValue": f"t{i}"}},
                }
                for i, body in enumerate(dlq)
            ],
            "https://sqs/1/app-IngestQueue": [],
        }
        self.hidden: set[str] = set()
        self.refuse = refuse
        self.moves: list[dict[str, str]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        name = QueueUrl.rsplit("/", 1)[-1]
        attrs = {
            "QueueArn": f"arn:aws:sqs:eu-west-1:1:{name}",
            "ApproximateNumberOfMessages": str(len(self._visible(QueueUrl))),
            "ApproximateNumberOfMessagesNotVisible": "0",
            "ApproximateNumberOfMessagesDelayed": "0",
        }
        if name == "app-IngestQueue":
            target = "arn:aws:sqs:eu-west-1:1:app-IngestDeadLetterQueue"
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": 5})
        return {"Attributes": {k: v for k, v in attrs.items() if k in AttributeNames}}

    def _visible(self, url: str) -> list[dict[str, Any]]:
        return [m for m in self.queues[url] if m["MessageId"] not in self.hidden]

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **kwargs: Any) -> dict[str, Any]:
        batch = self._visible(QueueUrl)[:MaxNumberOfMessages]
        if kwargs.get("VisibilityTimeout") != 0:
            self.hidden.update(m["MessageId"] for m in batch)
        return {"Messages": batch}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ok, failed = [], []
        for entry in Entries:
            if self.refuse and self.refuse in entry["MessageBody"]:
                failed.append({"Id": entry["Id"], "Code": "InvalidParameterValue", "SenderFault": True})
                continue
            self.queues[QueueUrl].append({"MessageId": f"new-{entry['Id']}", **entry})
            ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        handles = {e["ReceiptHandle"] for e in Entries}
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["ReceiptHandle"] not in handles]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        handles = {e["ReceiptHandle"] for e in Entries}
        self.hidden -= {m["MessageId"] for m in self.queues[QueueUrl] if m["ReceiptHandle"] in handles}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, str]:
        self.moves.append({"source": SourceArn, "destination": DestinationArn})
        return {"TaskHandle": "task-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        moved = len(self.queues["https://sqs/1/app-IngestDeadLetterQueue"])
        return {
            "Results": [
                {
                    "Status": "COMPLETED",
                    "ApproximateNumberOfMessagesMoved": moved,
                    "ApproximateNumberOfMessagesToMove": moved,
                }
            ]
        }


def aws_target(sqs: FakeSqs) -> Any:
    from herald_tools.stack import Target

    target = Target(
        stack_name="app",
        outputs={
            "IngestQueueUrl": "https://sqs/1/app-IngestQueue",
            "IngestDeadLetterQueueUrl": "https://sqs/1/app-IngestDeadLetterQueue",
        },
        region="eu-west-1",
    )
    target._clients["sqs"] = sqs
    return target


def test_on_aws_redrive_starts_the_sqs_message_move_task() -> None:
    sqs = FakeSqs(["a", "b"])
    result = ops.redrive(aws_target(sqs), "ingest")
    assert result["method"] == "native" and result["moved"] == 2
    assert sqs.moves == [
        {
            "source": "arn:aws:sqs:eu-west-1:1:app-IngestDeadLetterQueue",
            "destination": "arn:aws:sqs:eu-west-1:1:app-IngestQueue",
        }
    ]
    assert (
        ops.render_redrive(result) == "moved 2 message(s) from app-IngestDeadLetterQueue to app-IngestQueue"
    )


def test_portable_redrive_deletes_only_what_was_sent_and_keeps_attributes() -> None:
    bodies = [f"event {i}" for i in range(12)] + ["poison A", "poison B"]
    sqs = FakeSqs(bodies, refuse="poison")
    result = ops.redrive(aws_target(sqs), "ingest", portable=True)
    assert result["method"] == "portable" and result["moved"] == 12
    assert sorted(f["summary"] for f in result["failed"]) == ["poison A", "poison B"]
    assert {f["code"] for f in result["failed"]} == {"InvalidParameterValue"}
    left = sqs.queues["https://sqs/1/app-IngestDeadLetterQueue"]
    assert [m["Body"] for m in left] == ["poison A", "poison B"]
    assert not {m["MessageId"] for m in left} & sqs.hidden  # visible again in the DLQ
    moved = sqs.queues["https://sqs/1/app-IngestQueue"]
    assert [m["MessageBody"] for m in moved] == bodies[:12]
    assert moved[3]["MessageAttributes"] == {"trace": {"DataType": "String", "StringValue": "t3"}}
    text = ops.render_redrive(result)
    assert text.startswith("moved 12 message(s) from app-IngestDeadLetterQueue to app-IngestQueue")
    assert "✗ not moved: poison A (InvalidParameterValue" in text


def test_portable_redrive_honours_max() -> None:
    sqs = FakeSqs([f"event {i}" for i in range(5)])
    assert ops.redrive(aws_target(sqs), "ingest", max_messages=3)["moved"] == 3
    assert len(sqs.queues["https://sqs/1/app-IngestDeadLetterQueue"]) == 2


def test_stack_outputs_come_from_describe_stacks() -> None:
    from herald_tools.stack import stack_outputs

    class FakeCloudFormation:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            outputs = [
                {"OutputKey": "IngestQueueUrl", "OutputValue": f"https://sqs/1/{StackName}-IngestQueue"}
            ]
            return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}

    assert stack_outputs(FakeCloudFormation(), "herald-prod") == {
        "IngestQueueUrl": "https://sqs/1/herald-prod-IngestQueue"
    }


def test_durations() -> None:
    assert ops.parse_duration("90s").total_seconds() == 90
    assert ops.parse_duration("1h30m").total_seconds() == 5400
    assert ops.parse_duration("7d").days == 7
    with pytest.raises(ValueError, match="not a duration"):
        ops.parse_duration("soon")
