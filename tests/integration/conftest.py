"""A Herald stack on in-process moto, created from template.yaml, and a Lambda-like driver."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under a unique name (every function's module is `app`)."""
    name = f"herald_function_{function}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    function_name = "IngestFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:IngestFunction"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", hashlib.md5(m["Body"].encode()).hexdigest()),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


@dataclass
class Stack:
    s3: Any
    sqs: Any
    ddb: Any
    bucket: str
    queue_url: str
    queue_arn: str
    table: str
    handler: ModuleType

    def put(self, key: str, body: str | bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def receive(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        )
        return response.get("Messages", [])

    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Call the handler as Lambda would, then delete what it did not report as failed."""
        response = self.handler.handler(sqs_lambda_event(messages, self.queue_arn), LambdaContext())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return response

    def invoke_bodies(self, bodies: list[str]) -> dict[str, Any]:
        messages = [
            {"MessageId": str(uuid.uuid4()), "ReceiptHandle": str(uuid.uuid4()), "Body": b} for b in bodies
        ]
        return self.handler.handler(sqs_lambda_event(messages, self.queue_arn), LambdaContext())

    def drain(self) -> list[dict[str, Any]]:
        responses = []
        while messages := self.receive():
            responses.append(self.invoke(messages))
        return responses

    # -- reads, through Herald's own store ------------------------------------------------------

    def store(self) -> Any:
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        return DynamoContentStore(self.table, self.ddb)

    def outcome(self, key: str) -> dict[str, Any]:
        outcome = self.store().outcome(key)
        assert outcome is not None, f"no outcome recorded for {key!r}"
        return outcome.model_dump(mode="json")

    def outcomes(self) -> list[dict[str, Any]]:
        return [o.model_dump(mode="json") for o in self.store().outcomes()]

    def posts(self, community: str) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in self.store().community_posts(community)]

    def community(self, community: str) -> dict[str, Any]:
        found = self.store().community(community)
        assert found is not None, f"no community {community!r}"
        return found.model_dump(mode="json")


@pytest.fixture(autouse=True, scope="session")
def moto_as_the_local_cloud_runs_it() -> Iterator[None]:
    """moto with :mod:`herald_tools.localcloud.moto_patches`, as ``herald local`` runs it."""
    from herald_tools.localcloud import moto_patches

    patched = moto_patches.install()
    yield
    if patched:
        moto_patches.uninstall()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_SERVICE_NAME": "herald",
        "POWERTOOLS_METRICS_NAMESPACE": "Herald",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from herald.core import aws
    from herald_tools.localcloud import s3_fidelity
    from herald_tools.localcloud.provision import provision

    with mock_aws():
        s3_fidelity.install()
        resources = provision(ROOT / "template.yaml", boto3.Session(region_name=REGION))
        function = resources.functions["IngestFunction"]
        for name, value in function.environment.items():
            monkeypatch.setenv(name, str(value))
        handler = load_handler("ingest")
        handler.ingest_service.cache_clear()
        aws.client.cache_clear()
        sqs = boto3.client("sqs", region_name=REGION)
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=resources.ingest_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        stack = Stack(
            s3=boto3.client("s3", region_name=REGION),
            sqs=sqs,
            ddb=boto3.client("dynamodb", region_name=REGION),
            bucket=resources.uploads_bucket,
            queue_url=resources.ingest_queue_url,
            queue_arn=queue_arn,
            table=resources.content_table,
            handler=handler,
        )
        # S3 sends s3:TestEvent when notifications are configured: let the handler see it first.
        stack.drain()
        yield stack
        handler.ingest_service.cache_clear()
        aws.client.cache_clear()


# ----------------------------------------------------------------------------- the API function


@dataclass
class Api:
    """The API function on moto, with its environment from template.yaml."""

    handler: ModuleType
    ddb: Any
    sns: Any
    content_table: str
    members_table: str
    environment: dict[str, str]
    fcm_arn: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from tests.integration.api_events import rest_event

        event = rest_event(method, path, body=body, headers=headers, query=query)
        return self.handler.handler(event, LambdaContext())

    def content(self) -> Any:
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        return DynamoContentStore(self.content_table, self.ddb)

    def members(self) -> Any:
        from herald.members.adapters.dynamo_members import DynamoMemberStore

        return DynamoMemberStore(
            self.members_table, int(self.environment["MEMBER_COUNTER_SHARDS"]), dynamodb=self.ddb
        )


def start_api(monkeypatch: pytest.MonkeyPatch, extra_env: dict[str, str] | None = None) -> Api:
    """Provision template.yaml (inside an active moto mock or against AWS_ENDPOINT_URL) for the API."""
    from herald.api import app as api_app
    from herald.core import aws
    from herald_tools.localcloud.provision import provision

    session = boto3.Session(region_name=REGION)
    sns = session.client("sns")
    fcm = sns.create_platform_application(
        Name="herald-test-fcm", Platform="GCM", Attributes={"PlatformCredential": "test-server-key"}
    )["PlatformApplicationArn"]
    # The site URL a deploy gives (empty, the template names the distribution moto makes up).
    parameters = {"FcmPlatformApplicationArn": fcm, "PublicSiteUrl": "https://herald.example"}
    resources = provision(ROOT / "template.yaml", session, parameters=parameters)
    env = {k: str(v) for k, v in resources.functions["ApiFunction"].environment.items()}
    env.update(extra_env or {})
    secret = resources.resources["MemberTokenSecret"]
    if not secret.created:  # a provisioner that does not make secrets yet: make it here
        sm = session.client("secretsmanager")
        sm.create_secret(Name=env["MEMBER_TOKEN_SECRET_ARN"], SecretString="test-" + "k" * 59)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    aws.client.cache_clear()
    api_app.configure(None)
    return Api(
        handler=load_handler("api"),
        ddb=session.client("dynamodb"),
        sns=sns,
        content_table=env["CONTENT_TABLE"],
        members_table=env["MEMBERS_TABLE"],
        environment=env,
        fcm_arn=fcm,
    )


@pytest.fixture
def api(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from herald.api import app as api_app
    from herald.core import aws

    with mock_aws():
        yield start_api(monkeypatch)
        api_app.configure(None)
        aws.client.cache_clear()
