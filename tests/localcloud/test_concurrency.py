"""Concurrency like Lambda's: several execution environments per function, and the event sources'
ordering kept (one batch in flight per FIFO message group, one per stream shard).

Parallelism is shown without timing: the fixture functions wait at a *gate* (a directory of
marker files, see fixtures/concurrency/app.py) until N invocations have arrived, so N invocations
pass together only when N environments run at once; a one-environment function would leave each
waiting out the gate's bound and seeing only itself.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from herald_tools.localcloud import LocalCloud
from herald_tools.localcloud.event_sources import SqsPoller
from herald_tools.localcloud.functions import (
    DEFAULT_CONCURRENCY,
    MAX_RESERVED_CONCURRENCY,
    LogSink,
    WorkerPool,
    concurrency_for,
)
from herald_tools.localcloud.provision import FunctionSpec

from .conftest import FIXTURES

pytestmark = pytest.mark.e2e

TEMPLATE = FIXTURES / "concurrency-template.yaml"


def _spec(**properties: Any) -> FunctionSpec:
    return FunctionSpec(
        logical_id="F",
        name="f",
        arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        code_dir=Path("."),
        handler="app.handler",
        runtime="python3.11",
        environment={},
        timeout=3,
        memory_size=128,
        layers=[],
        properties=properties,
    )


def test_pool_size_is_the_reserved_concurrency_capped_else_the_default() -> None:
    assert concurrency_for(_spec()) == DEFAULT_CONCURRENCY == 4
    assert concurrency_for(_spec(ReservedConcurrentExecutions=3)) == 3
    assert concurrency_for(_spec(ReservedConcurrentExecutions=50)) == MAX_RESERVED_CONCURRENCY == 8
    assert concurrency_for(_spec(ReservedConcurrentExecutions=0)) == 0  # throttled, as on AWS
    # --concurrency N: N environments, fewer where the template reserves fewer.
    assert concurrency_for(_spec(), override=2) == 2
    assert concurrency_for(_spec(ReservedConcurrentExecutions=50), override=16) == 16
    assert concurrency_for(_spec(ReservedConcurrentExecutions=3), override=16) == 3
    with pytest.raises(ValueError, match="ReservedConcurrentExecutions is -1"):
        concurrency_for(_spec(ReservedConcurrentExecutions=-1))
    with pytest.raises(ValueError, match="at least 1, not 0"):
        concurrency_for(_spec(), override=0)


# -- on a running local cloud ------------------------------------------------------------------


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def cloud(markers: Path) -> Iterator[LocalCloud]:
    with LocalCloud(TEMPLATE, parameters={"MarkerDir": str(markers)}, retry_visibility_timeout=0) as c:
        c.start(port=0, api_port=0)
        yield c


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for ``condition`` (checked every 10 ms), failing with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.01)


def get(cloud: LocalCloud, path: str) -> tuple[int, dict[str, str], Any]:
    assert cloud.api_url is not None
    try:
        with urllib.request.urlopen(cloud.api_url + path, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_pools_follow_the_template(cloud: LocalCloud) -> None:
    assert cloud.pool("GateFunction").max_size == 3  # ReservedConcurrentExecutions: 3
    assert cloud.pool("WorkFunction").max_size == DEFAULT_CONCURRENCY
    (scaled,) = [p for p in cloud.pollers if p.worker is cloud.pool("ScaledFunction")]
    assert isinstance(scaled, SqsPoller) and scaled.concurrency == 2  # ScalingConfig.MaximumConcurrency


def test_concurrent_api_requests_run_in_environments_of_their_own(cloud: LocalCloud) -> None:
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: get(cloud, "/gate/together?n=3"), range(3)))
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [body["seen"] for _, _, body in answers] == [3, 3, 3]  # all three were in at once
    assert len({body["pid"] for _, _, body in answers}) == 3


def test_requests_beyond_the_reserved_concurrency_wait_for_a_free_environment(
    cloud: LocalCloud, markers: Path
) -> None:
    gate = cloud.pool("GateFunction")
    assert cloud.api is not None
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(get, cloud, "/gate/queued?n=99") for _ in range(4)]
        # Three run (the reservation), the fourth is in the gateway waiting for one of them.
        until(
            lambda: gate.running == 3 and cloud.api is not None and cloud.api.in_flight == 4, "3 + 1 waiting"
        )
        assert len(gate.workers) == 3
        (markers / "queued" / "release").write_text("")
        answers = [f.result(timeout=30) for f in futures]
    assert [status for status, _, _ in answers] == [200] * 4
    assert len({body["pid"] for _, _, body in answers}) <= 3
    assert gate.peak == 3


def test_a_request_that_finds_no_environment_in_time_is_throttled(cloud: LocalCloud, markers: Path) -> None:
    gate = cloud.pool("GateFunction")
    throttles = gate.throttles
    try:
        with ThreadPoolExecutor(3) as pool:
            held = [pool.submit(get, cloud, "/gate/held?n=99") for _ in range(3)]
            until(lambda: gate.running == 3, "three environments busy")
            # Short only now: the three held requests may wait out their cold starts, however slow.
            cloud.api_queue_seconds = 0.2
            status, headers, body = get(cloud, "/gate/held?n=99")
            (markers / "held" / "release").write_text("")
            assert [f.result(timeout=30)[0] for f in held] == [200] * 3
    finally:
        cloud.api_queue_seconds = 10.0
    # What API Gateway answers when Lambda throttles a proxy integration.
    assert status == 500 and body == {"message": "Internal server error"}
    assert headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    assert gate.throttles == throttles + 1


def _results(markers: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((markers / f"{name}.results").iterdir())]


def test_sqs_batches_run_concurrently(cloud: LocalCloud, markers: Path) -> None:
    sqs = cloud.client("sqs")
    url = cloud.outputs["WorkQueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "gate:q4:4"} for i in range(4)]
    )
    until(
        lambda: (markers / "q4.results").is_dir() and len(list((markers / "q4.results").iterdir())) == 4,
        "4 done",
    )
    cloud.wait_until_idle(timeout=20)
    results = _results(markers, "q4")
    assert [r["seen"] for r in results] == [4, 4, 4, 4]  # four batches in flight at once
    assert len({r["pid"] for r in results}) == 4


def test_maximum_concurrency_bounds_the_batches_in_flight(cloud: LocalCloud, markers: Path) -> None:
    (poller,) = [p for p in cloud.pollers if p.worker is cloud.pool("ScaledFunction")]
    assert isinstance(poller, SqsPoller)
    sqs = cloud.client("sqs")
    url = cloud.outputs["ScaledQueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "gate:s2:2"} for i in range(4)]
    )
    until(
        lambda: (markers / "s2.results").is_dir() and len(list((markers / "s2.results").iterdir())) == 4,
        "4 done",
    )
    cloud.wait_until_idle(timeout=20)
    assert all(r["seen"] >= 2 for r in _results(markers, "s2"))  # two at once...
    assert poller.peak == 2  # ...and never more, though the function has four environments
    assert cloud.pool("ScaledFunction").peak <= 2


def test_fifo_groups_run_in_parallel_each_in_order(cloud: LocalCloud, markers: Path) -> None:
    sqs = cloud.client("sqs")
    url = cloud.outputs["OrderedQueueUrl"]
    sent: dict[str, list[str]] = {"a": ["meet:2"], "b": ["meet:2"]}
    for i in range(1, 6):
        sent["a"].append(f"a{i}")
        sent["b"].append(f"b{i}")
    for i in range(len(sent["a"])):
        for group in ("a", "b"):
            body = sent[group][i]
            # Deduplication ids of their own: "meet:2" is sent in both groups.
            sqs.send_message(
                QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=f"{group}-{i}"
            )
    fifo = markers / "fifo"

    def logged(group: str) -> list[str]:
        path = fifo / f"{group}.log"
        return path.read_text().split() if path.exists() else []

    until(lambda: len(logged("a")) == 6 and len(logged("b")) == 6, "both groups done")
    cloud.wait_until_idle(timeout=20)
    assert logged("a") == sent["a"] and logged("b") == sent["b"]  # each group in its order
    assert not list(fifo.glob("*.overlap-*")), "two messages of one group ran at once"
    # The first messages of the two groups met at the gate: the groups ran in parallel.
    assert (fifo / "a.meet").read_text() == "2" and (fifo / "b.meet").read_text() == "2"


def test_a_stream_shard_gets_one_batch_at_a_time_in_order(cloud: LocalCloud, markers: Path) -> None:
    ddb = cloud.client("dynamodb")
    table = cloud.outputs["ChangesTableName"]
    keys = [f"k{i:02d}" for i in range(12)]
    for key in keys:
        ddb.put_item(TableName=table, Item={"id": {"S": key}})
    log = markers / "stream" / "log"
    until(lambda: log.exists() and len(log.read_text().split()) == len(keys), "all records delivered")
    cloud.wait_until_idle(timeout=20)
    assert log.read_text().split() == keys
    assert not list((markers / "stream").glob("overlap-*")), "two batches of one shard ran at once"


def test_concurrent_transactions_on_one_item_are_isolated(cloud: LocalCloud) -> None:
    """DynamoDB lets one of concurrent conditional transactions on an item through; moto alone
    lets several (its backend has no isolation): the local cloud's moto serializes them."""
    ddb = cloud.client("dynamodb")
    ddb.create_table(
        TableName="claims",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    # Some items, so that each of moto's transactions has a table to work through.
    for i in range(300):
        ddb.put_item(TableName="claims", Item={"pk": {"S": f"filler-{i}"}, "data": {"S": "x" * 200}})

    # botocore makes a client's exception classes on first use, without a lock: threads that first
    # touch them at once may each make their own, and an error raised as one is not caught as the
    # other. Made here, once, before the threads start.
    cancelled = ddb.exceptions.TransactionCanceledException

    def claim(args: tuple[int, int]) -> bool:
        key, who = args
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": "claims",
                            "Item": {"pk": {"S": f"claim-{key}"}, "who": {"N": str(who)}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": "claims",
                            "Key": {"pk": {"S": f"count-{key}"}},
                            "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except cancelled:
            return False
        return True

    keys, contenders = 20, 8
    # moto's server runs in this process: switching threads often opens every window there is.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(contenders) as pool:
            won = list(pool.map(claim, [(k, w) for k in range(keys) for w in range(contenders)]))
    finally:
        sys.setswitchinterval(interval)
    wins = [sum(won[k * contenders : (k + 1) * contenders]) for k in range(keys)]
    counters = [
        ddb.get_item(TableName="claims", Key={"pk": {"S": f"count-{k}"}}).get("Item") for k in range(keys)
    ]
    counts = [int(item["n"]["N"]) if item and "n" in item else 0 for item in counters]
    assert wins == [1] * keys, "a claim was won more than once (or never)"
    assert counts == [1] * keys  # the cancelled transactions' counter updates were rolled back


def test_herald_local_takes_a_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    from herald_tools.cli import build_parser

    assert build_parser().parse_args(["local", "--concurrency", "2"]).concurrency == 2
    assert build_parser().parse_args(["local"]).concurrency is None  # the template decides
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["local", "--concurrency", "0"])
    assert exit_info.value.code == 2 and "--concurrency" in capsys.readouterr().err


# -- idle environments -------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_idle_environment_is_stopped_and_a_busy_one_is_not(tmp_path: Path) -> None:
    spec = dataclasses.replace(
        _spec(),
        code_dir=FIXTURES / "concurrency",
        handler="app.api_handler",
        environment={"MARKER_DIR": str(tmp_path), "GATE_WAIT_SECONDS": "120"},  # held until released
        timeout=180,
    )
    pool = WorkerPool(spec, None, logs=LogSink(io.StringIO()), max_size=2, idle_seconds=0.5)

    def call(gate: str, n: int) -> int:
        result = pool.invoke({"pathParameters": {"name": gate}, "queryStringParameters": {"n": str(n)}})
        assert result.ok, result.error_message
        return int(json.loads(result.result["body"])["pid"])

    try:
        with ThreadPoolExecutor(1) as background:
            busy = background.submit(call, "hold", 2)  # waits at its gate until released
            until(lambda: pool.running == 1, "running")
            idle_pid = call("pass", 1)  # a second environment, idle once it has answered
            until(lambda: len(pool.workers) == 1, "the idle environment stopped")
            until(lambda: not _alive(idle_pid), "its process gone")
            assert pool.running == 1 and pool.stopped_idle == 1  # the busy one still runs
            (tmp_path / "hold" / "release").write_text("")
            busy_pid = busy.result(timeout=30)
        assert busy_pid != idle_pid
        until(lambda: not pool.workers and not _alive(busy_pid), "the other stopped once idle")
        assert (pool.cold_starts, pool.invocations, pool.stopped_idle) == (2, 2, 2)  # counted still
        assert call("again", 1) not in (busy_pid, idle_pid)  # a new environment: a cold start
        assert pool.cold_starts == 3
    finally:
        pool.stop()


def test_an_invocation_waits_for_a_busy_environment_before_another_starts(tmp_path: Path) -> None:
    spec = dataclasses.replace(
        _spec(),
        code_dir=FIXTURES / "concurrency",
        handler="app.api_handler",
        environment={"MARKER_DIR": str(tmp_path), "GATE_WAIT_SECONDS": "120"},
        timeout=180,
    )

    def call(pool: WorkerPool, gate: str, n: int) -> int:
        result = pool.invoke({"pathParameters": {"name": gate}, "queryStringParameters": {"n": str(n)}})
        assert result.ok, result.error_message
        return int(json.loads(result.result["body"])["pid"])

    patient = WorkerPool(spec, None, logs=LogSink(io.StringIO()), max_size=4, scale_out_seconds=600)
    eager = WorkerPool(spec, None, logs=LogSink(io.StringIO()), max_size=4, scale_out_seconds=0.2)
    try:
        with ThreadPoolExecutor(2) as background:
            # Within scale_out_seconds the second invocation waits for the busy environment.
            first = background.submit(call, patient, "patient", 2)
            until(lambda: patient.running == 1, "running")
            second = background.submit(call, patient, "after", 1)
            until(lambda: patient.waiting == 1, "the second waiting")
            (tmp_path / "patient" / "release").write_text("")
            assert first.result(timeout=60) == second.result(timeout=60)
            assert len(patient.workers) == 1 and patient.cold_starts == 1
            # Past it, another environment starts while the first is still busy.
            held = background.submit(call, eager, "eager", 2)
            until(lambda: eager.running == 1, "running")
            other = call(eager, "other", 1)
            assert len(eager.workers) == 2 and eager.running == 1
            (tmp_path / "eager" / "release").write_text("")
            assert held.result(timeout=60) != other
    finally:
        patient.stop()
        eager.stop()
