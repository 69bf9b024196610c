"""What is tested is what ships: the functions run from ``sam build``'s artefacts on Python 3.13.

``herald local --built`` runs the local cloud's functions from the host twin of ``.aws-sam/build``
(``make build-host``: the same distributions and versions, the compiled wheels for this machine),
on the Lambda Python with nothing but the layer, the function's artifact and the runtime shim on
the path. Each function of template.yaml is imported and invoked once there with an event of the
shape AWS sends it, through the same ``LocalCloud(built=...)`` that ``herald local --built`` starts;
and one upload goes the whole way through ``herald local --built`` in a subprocess.

The twin must exist (CI runs ``make build-host`` before the suite): without it these tests fail,
naming the make target.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from herald.fanout.jobs import PostSummary, PushJob, ShardJob, Target
from herald_tools.bench.local_cloud import wait_until_idle
from herald_tools.built import (
    BUILD_DIR,
    MAKE_TARGET,
    TWIN_DIR,
    Twin,
    TwinError,
    describe_python,
    load_twin,
    pyc_problem,
    verify,
)
from herald_tools.localcloud import LocalCloud, Template
from herald_tools.localcloud.functions import InvocationResult
from tests.herald_local import herald_local
from tests.integration.api_events import rest_event

ROOT = Path(__file__).resolve().parents[2]
HERALD = [sys.executable, "-m", "herald_tools.cli"]
REGION = "us-east-1"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def twin() -> Twin:
    try:
        return load_twin(ROOT / TWIN_DIR)
    except TwinError as exc:
        pytest.fail(f"{exc} (the built-artefact tests need it; CI runs `{MAKE_TARGET}` first)")


@pytest.fixture(scope="module")
def cloud(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    logs = tmp_path_factory.mktemp("built") / "functions.log"
    with LocalCloud(built=twin.root, logs=logs).start(port=0) as running:
        yield running


# -- real event shapes ----------------------------------------------------------------------------


def _sqs_event(cloud: LocalCloud, queue_output: str, body: str) -> dict[str, Any]:
    """Lambda's SQS event of one message of the stack's queue (its URL is the output ``queue_output``)."""
    url = str(cloud.outputs[queue_output])
    arn = cloud.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    now = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEB" + uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
        ]
    }


def _api_event(community: str) -> dict[str, Any]:
    """A REST API proxy event for GET /communities/{id}, as API Gateway sends it."""
    return rest_event("GET", f"/communities/{community}", headers={"Accept": "application/json"})


POST = PostSummary(
    "built-twin",
    "0123456789abcdef0123",
    "Ferry times",
    "The ferry leaves at nine.",
    "https://herald.example/built-twin/posts/0123456789abcdef0123/",
    language="en",
)


def _invoke_api(cloud: LocalCloud) -> InvocationResult:
    result = cloud.pool("ApiFunction").invoke(_api_event("nobody-uploaded-this"))
    assert result.ok, result.error_message
    assert result.result["statusCode"] == 404
    return result


def _invoke_ingest(cloud: LocalCloud) -> InvocationResult:
    # What S3 sends a queue when the bucket's notifications are set up.
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-12-02T12:00:00.000Z",
            "Bucket": cloud.resources.uploads_bucket,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )
    result = cloud.pool("IngestFunction").invoke(_sqs_event(cloud, "IngestQueueUrl", body))
    assert result.ok, result.error_message
    assert result.result == {"batchItemFailures": []}
    return result


def _invoke_member_counter(cloud: LocalCloud) -> InvocationResult:
    member = uuid.uuid4().hex
    image = {
        "pk": {"S": f"M#built-twin#{member}"},
        "sk": {"S": "MEMBER"},
        "community": {"S": "built-twin"},
        "shard": {"N": "3"},
    }
    table = str(cloud.outputs["MembersTableName"])
    stream = cloud.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    event = {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": time.time(),
                    "Keys": {"pk": image["pk"], "sk": image["sk"]},
                    "NewImage": image,
                    "SequenceNumber": "100000000000000000001",
                    "SizeBytes": 120,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": stream,
            }
        ]
    }
    result = cloud.pool("MemberCounterFunction").invoke(event)
    assert result.ok, result.error_message
    assert result.result == {"records": 1, "writes": 1}
    return result


def _invoke_translator(cloud: LocalCloud) -> InvocationResult:
    # A new post in a community without settings: read its settings, nothing to translate.
    post = {
        "pk": {"S": "C#built-twin"},
        "sk": {"S": "POST#p-built-twin"},
        "id": {"S": "p-built-twin"},
        "community": {"S": "built-twin"},
        "key": {"S": "posts/built-twin/hello.txt"},
        "title": {"S": "Ferry times"},
        "text": {"S": "Ferry times change on Monday."},
        "excerpt": {"S": "Ferry times change on Monday."},
        "language": {"S": "en"},
        "content_hash": {"S": "0" * 64},
        "created_at": {"S": "2026-12-01T10:00:00+00:00"},
        "updated_at": {"S": "2026-12-01T10:00:00+00:00"},
    }
    table = str(cloud.outputs["ContentTableName"])
    stream = cloud.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    event = {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": time.time(),
                    "Keys": {"pk": post["pk"], "sk": post["sk"]},
                    "NewImage": post,
                    "SequenceNumber": "100000000000000000002",
                    "SizeBytes": 400,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": stream,
            }
        ]
    }
    result = cloud.pool("TranslatorFunction").invoke(event)
    assert result.ok, result.error_message
    assert result.result == {"batchItemFailures": []}
    return result


def _invoke_publisher(cloud: LocalCloud) -> InvocationResult:
    # herald republish's event, for a community nobody uploaded: refused, by name.
    event = {"v": 1, "kind": "republish", "community": "nobody-uploaded-this"}
    result = cloud.pool("PublisherFunction").invoke(event)
    assert not result.ok and result.error_type == "RepublishRefused", result.error_message
    return result


def _invoke_planner(cloud: LocalCloud) -> InvocationResult:
    job = ShardJob(post=POST, shard=0)
    result = cloud.pool("FanoutPlannerFunction").invoke(_sqs_event(cloud, "PlannerQueueUrl", job.as_json()))
    assert result.ok, result.error_message
    assert result.result == {"batchItemFailures": []}
    return result


def _invoke_push_sender(cloud: LocalCloud) -> InvocationResult:
    assert cloud.push_service is not None
    subscription = cloud.push_service.new_subscription(cloud.vapid_public_key)
    sid = cloud.push_service.subscription_id(subscription)
    target = Target(member_id=uuid.uuid4().hex, channel="web", subscription=sid, web_push=subscription)
    job = PushJob(job_id=uuid.uuid4().hex, post=POST, targets=(target,))
    result = cloud.pool("PushSenderFunction").invoke(_sqs_event(cloud, "PushJobQueueUrl", job.as_json()))
    assert result.ok, result.error_message
    assert result.result == {"batchItemFailures": []}
    # Signed and encrypted (cryptography, http_ece) on the twin, and decrypted by the push service.
    [delivery] = cloud.push_service.received(sid)
    assert delivery.json is not None and "Ferry times" in json.dumps(delivery.json)
    return result


INVOCATIONS: dict[str, Callable[[LocalCloud], InvocationResult]] = {
    "ApiFunction": _invoke_api,
    "IngestFunction": _invoke_ingest,
    "MemberCounterFunction": _invoke_member_counter,
    "PublisherFunction": _invoke_publisher,
    "FanoutPlannerFunction": _invoke_planner,
    "PushSenderFunction": _invoke_push_sender,
    "TranslatorFunction": _invoke_translator,
}


def test_the_twin_is_the_build_of_every_function_of_the_template(twin: Twin) -> None:
    template = Template.load(ROOT / "template.yaml")
    functions = {lid for lid, r in template.resources.items() if r.get("Type") == "AWS::Serverless::Function"}
    assert functions == set(INVOCATIONS) == set(twin.manifest["functions"])
    assert verify(ROOT / BUILD_DIR, twin.root, describe_python(twin.python)) == []
    layer = twin.manifest["layers"]["HeraldLayer"]
    assert {"pydantic_core", "cryptography"} <= set(layer["compiled"])
    for name, tags in layer["compiled"].items():
        assert all("aarch64" in t for t in tags["build"]), name  # built for Lambda's arm64
        assert tags["twin"] and not any("aarch64" in t for t in tags["twin"]), name
    # The layer's bytecode: Herald's as built, byte for byte; a reinstalled distribution's compiled
    # again from the host wheel's source, the same way (verify checks every module's, these two here).
    built, site = ROOT / BUILD_DIR / "HeraldLayer" / "python", twin.root / "HeraldLayer" / "python"
    magic = bytes.fromhex(twin.manifest["python"]["magic"])
    for module in ("herald/__init__.py", "pydantic_core/__init__.py"):
        pyc = importlib.util.cache_from_source(module)
        assert pyc == module.replace("__init__.py", "__pycache__/__init__.cpython-313.pyc")
        assert pyc_problem(site / pyc, site / module, magic) is None, module
    herald_pyc = "herald/__pycache__/__init__.cpython-313.pyc"
    assert (site / herald_pyc).read_bytes() == (built / herald_pyc).read_bytes()


@pytest.mark.parametrize("function", sorted(INVOCATIONS))
def test_each_function_runs_once_from_the_twin(cloud: LocalCloud, twin: Twin, function: str) -> None:
    spec = cloud.resources.functions[function]
    assert spec.built is not None and spec.built.python == twin.python
    assert spec.code_dir == (twin.root / function).resolve()
    assert spec.layers == [(twin.root / "HeraldLayer").resolve()]
    result = INVOCATIONS[function](cloud)
    assert result.cold_start or cloud.pool(function).cold_starts >= 1


# -- herald local --built, in a subprocess ---------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    return env


def _herald(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERALD, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )


def test_herald_local_built_without_a_twin_names_the_make_target(tmp_path: Path) -> None:
    result = _herald("local", "--built", str(tmp_path / "no-twin"), "--port", "0", timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("herald local --built: no host twin") and f"`{MAKE_TARGET}`" in line


def test_an_upload_is_stored_and_published_by_herald_local_built(twin: Twin, tmp_path: Path) -> None:
    with herald_local("--built", env=_env(), stop_timeout=30) as (process, info):
        assert info["built"] == {"dir": str(twin.root), "python": twin.python, "runtime": "python3.13"}
        s3 = boto3.client(
            "s3",
            endpoint_url=info["endpoint_url"],
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        key = "posts/built-twin/ferry.md"
        text = "---\ntitle: Ferry times\n---\nThe ferry to Mombasa, Kenya leaves at nine. #Travel"
        s3.put_object(Bucket=info["uploads_bucket"], Key=key, Body=text.encode())
        deadline = time.monotonic() + 90
        while True:
            result = _herald("outcome", key, "--endpoint-url", info["endpoint_url"], "--json", timeout=60)
            if result.returncode == 0:
                break
            assert time.monotonic() < deadline, f"the upload was never processed: {result.stderr}"
            wait_until_idle(info["status_url"], timeout=30, quiet_s=0.2)
        outcome = json.loads(result.stdout)
        assert outcome["status"] == "published", outcome
        [post_id] = outcome["post_ids"]
        report = json.loads(_herald("report", "--endpoint-url", info["endpoint_url"], "--json").stdout)
        [post] = [p for p in report["posts"] if p["id"] == post_id]
        assert (
            post["title"] == "Ferry times"
            and post["countries"] == ["KE"]
            and post["community"] == "built-twin"
        )
        wait_until_idle(info["status_url"], timeout=60, quiet_s=0.5)  # the publisher, from the table's stream
        with urllib.request.urlopen(f"{info['site_url']}/built-twin/posts/{post_id}/", timeout=10) as page:
            assert page.status == 200 and "Ferry times" in page.read().decode()
        # herald invoke runs a function of the built cloud the same way: from the twin, on 3.13.
        event = tmp_path / "event.json"
        event.write_text(json.dumps(_api_event("built-twin")))
        invoked = _herald(
            "invoke", "ApiFunction", "--event", str(event), "--endpoint-url", info["endpoint_url"]
        )
        assert invoked.returncode == 0, invoked.stderr
        response = json.loads(invoked.stdout)
        assert response["statusCode"] == 200 and "built-twin" in response["body"]
        ssm = boto3.client(
            "ssm",
            endpoint_url=info["endpoint_url"],
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        published = ssm.get_parameter(Name="/herald/local/functions/ApiFunction")["Parameter"]["Value"]
        assert json.loads(published)["built"]["python"] == twin.python
    assert process.returncode == 0
