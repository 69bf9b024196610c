"""The local cloud end to end: moto's server, a worker process, the SQS and stream pollers."""

import dataclasses
import io
import uuid

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from herald_tools.localcloud import FunctionWorker, LocalCloud, LogSink

from .conftest import RECORDER_TEMPLATE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def logs():
    return io.StringIO()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, logs):
    markers = tmp_path_factory.mktemp("markers")
    # retry_visibility_timeout=0: a failed message is visible again at once, so retries are quick.
    cloud = LocalCloud(
        RECORDER_TEMPLATE, parameters={"MarkerDir": str(markers)}, logs=logs, retry_visibility_timeout=0
    )
    with cloud.start(port=0) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def seen(cloud, body: str) -> list[dict]:
    """What the recording function stored for ``body``, one item per delivery, in receive order."""
    resource = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).resource("dynamodb", endpoint_url=cloud.endpoint_url)
    items = resource.Table(cloud.outputs["RecordTableName"]).query(KeyConditionExpression=Key("pk").eq(body))
    return sorted(items["Items"], key=lambda i: i["sk"].rsplit("#", 1)[-1])


def dlq_bodies(cloud) -> list[str]:
    sqs = cloud.client("sqs")
    out = []
    for m in sqs.receive_message(
        QueueUrl=cloud.outputs["WorkDeadLetterQueueUrl"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", []):
        out.append(m["Body"])
    return out


def send(cloud, *bodies: str) -> None:
    cloud.client("sqs").send_message_batch(
        QueueUrl=cloud.outputs["WorkQueueUrl"],
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)],
    )


def test_ready_info(cloud):
    info = cloud.ready_info()
    assert info["endpoint_url"].startswith("http://127.0.0.1:")
    assert info["region"] == "us-east-1"
    assert set(info) >= {"uploads_bucket", "content_table", "ingest_queue_url", "ingest_dlq_url", "outputs"}
    assert info["outputs"]["WorkQueueUrl"].startswith(info["endpoint_url"])


def test_a_message_is_processed_once(cloud, logs):
    body = unique("ok")
    send(cloud, body)
    cloud.wait_until_idle(timeout=20)
    (item,) = seen(cloud, body)
    assert item["sk"].endswith("#1")
    assert item["function"] == "herald-dev-RecorderFunction"
    assert item["memory"] == "256"
    assert item["stage"] == "test"  # Globals + parameter
    assert 0 < item["remaining_ms"] <= 5000
    assert "[herald-dev-RecorderFunction] got" in logs.getvalue()


def test_batch_item_failures_are_retried_then_dead_lettered(cloud):
    good, bad = unique("ok"), unique("fail")
    send(cloud, good, bad)
    cloud.wait_until_idle(timeout=30)
    assert len(seen(cloud, good)) == 1  # not retried with its failing neighbour
    attempts = seen(cloud, bad)
    assert [a["sk"].rsplit("#", 1)[1] for a in attempts] == ["1", "2", "3"]  # maxReceiveCount 3
    assert bad in dlq_bodies(cloud)


def test_an_exception_fails_the_whole_batch(cloud):
    body = unique("raise")
    send(cloud, body)
    cloud.wait_until_idle(timeout=30)
    assert len(seen(cloud, body)) == 3
    assert body in dlq_bodies(cloud)
    assert any("asked to raise" in (p.last_error or "") for p in cloud.pollers)


def test_a_crashed_worker_is_restarted_and_the_message_retried(cloud):
    worker = cloud.workers["RecorderFunction"]
    cold_starts = worker.cold_starts
    body = unique("crash-once")
    send(cloud, body)
    cloud.wait_until_idle(timeout=30)
    first, second = seen(cloud, body)
    assert first["pid"] != second["pid"]
    assert worker.cold_starts >= cold_starts + 1
    assert body not in dlq_bodies(cloud)


def test_wait_until_idle_names_what_is_busy(cloud):
    body = unique("sleep:1.5")
    send(cloud, body)
    with pytest.raises(TimeoutError, match=r"WorkQueue|invocation"):
        cloud.wait_until_idle(timeout=0.3)
    cloud.wait_until_idle(timeout=20)
    assert len(seen(cloud, body)) == 1


def test_a_timeout_kills_the_worker(cloud):
    spec = dataclasses.replace(cloud.workers["RecorderFunction"].spec, timeout=1)
    out = io.StringIO()
    worker = FunctionWorker(spec, cloud.endpoint_url, logs=LogSink(out))
    try:
        record = {"body": unique("sleep:3"), "messageId": "m", "attributes": {"ApproximateReceiveCount": "1"}}
        result = worker.invoke({"Records": [record]})
        assert not result.ok and result.error_type == "Sandbox.Timedout"
        assert worker.pid is None
        record = {"body": unique("ok"), "messageId": "m", "attributes": {"ApproximateReceiveCount": "1"}}
        result = worker.invoke({"Records": [record]})
        assert result.ok and result.cold_start and result.result == {"batchItemFailures": []}
        assert worker.cold_starts == 2
        assert "Task timed out after 1.00 seconds" in out.getvalue()
    finally:
        worker.stop()


def test_an_import_error_fails_the_invocation(cloud, tmp_path):
    (tmp_path / "app.py").write_text("raise ImportError('nope')\n")
    spec = dataclasses.replace(cloud.workers["RecorderFunction"].spec, code_dir=tmp_path)
    worker = FunctionWorker(spec, cloud.endpoint_url, logs=LogSink(io.StringIO()))
    try:
        result = worker.invoke({})
        assert not result.ok and result.error_type == "Runtime.ImportModuleError"
    finally:
        worker.stop()


def test_dynamodb_stream_records_reach_the_function(cloud):
    ddb = cloud.client("dynamodb")
    key = unique("item")
    table = cloud.outputs["ChangesTableName"]
    ddb.put_item(TableName=table, Item={"id": {"S": key}, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"id": {"S": key}, "n": {"N": "2"}})
    ddb.delete_item(TableName=table, Key={"id": {"S": key}})
    cloud.wait_until_idle(timeout=20)
    events = sorted(seen(cloud, "stream#" + key), key=lambda i: int(i["sk"]))
    assert [e["event_name"] for e in events] == ["INSERT", "MODIFY", "REMOVE"]
    assert [e["has_new_image"] for e in events] == [True, True, False]
    assert {e["source"] for e in events} == {"aws:dynamodb"}
