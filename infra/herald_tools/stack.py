"""Where a Herald runs: a CloudFormation stack on AWS, or the local cloud on this machine.

Either way the resources are found by the template's Outputs (``IngestQueueUrl``,
``ContentTableName``, ...): on AWS from ``DescribeStacks``, locally from the SSM parameter
``/herald/local/outputs`` that ``herald local`` and ``herald demo`` publish.

The local cloud's endpoint is ``--endpoint-url``, else ``AWS_ENDPOINT_URL`` (the variable the AWS
CLI and SDKs read for the same purpose), else ``http://127.0.0.1:4566``. It accepts any
credentials; :data:`LOCAL_CREDENTIALS` are the ones Herald uses and prints.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
OUTPUTS_PARAMETER = "/herald/local/outputs"
LOCAL_STACK_NAME = "herald-dev"  # the stack the local cloud plays (see localcloud.template.STACK_NAME)
LOCAL_REGION = "us-east-1"
# Dummy credentials: the local cloud accepts any, but the AWS CLI and SDKs refuse to send a
# request without some ("Unable to locate credentials").
LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def local_env(endpoint_url: str, region: str = LOCAL_REGION) -> dict[str, str]:
    """The variables that point the AWS CLI (v1, and v2 from 2.13) and SDKs at the local cloud."""
    return {
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,  # the one the AWS CLI v1 and boto3 read
        "AWS_ENDPOINT_URL": endpoint_url,
    }


def default_endpoint() -> str:
    """The local cloud's endpoint when none is given: ``AWS_ENDPOINT_URL``, else the default."""
    return os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT


class StackError(SystemExit):
    """The stack or the local cloud cannot be reached or lacks what a command needs."""

    def __init__(self, message: str) -> None:
        super().__init__(f"herald: {message}")


@dataclass
class Target:
    """A running Herald: its Outputs and a way to make clients for it."""

    stack_name: str
    outputs: dict[str, str]
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    local_info: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    @property
    def where(self) -> str:
        return f"the local cloud at {self.endpoint_url}" if self.is_local else f"stack {self.stack_name}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _client(service, self.region, self.endpoint_url, self.profile)
        return self._clients[service]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise StackError(f"{self.where} has no output {name!r}") from None

    def content_store(self) -> Any:
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        return DynamoContentStore(self.output("ContentTableName"), self.client("dynamodb"))

    def member_store(self) -> Any:
        """The members table, for exact member counts; None for a stack without members."""
        from herald.members.adapters.dynamo_members import DynamoMemberStore

        if "MembersTableName" not in self.outputs:
            return None
        shards = int(self.outputs.get("MemberCounterShards", 32))
        return DynamoMemberStore(self.output("MembersTableName"), shards, self.client("dynamodb"))


def _client(service: str, region: str, endpoint_url: str | None, profile: str | None) -> Any:
    import boto3

    if endpoint_url is not None:
        return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **LOCAL_CREDENTIALS)
    return boto3.Session(profile_name=profile, region_name=region).client(service)  # type: ignore[call-overload]


def local_info(endpoint_url: str) -> dict[str, Any]:
    """What the local cloud at ``endpoint_url`` published: its ``ready_info()``."""
    ssm = _client("ssm", LOCAL_REGION, endpoint_url, None)
    try:
        value = ssm.get_parameter(Name=OUTPUTS_PARAMETER)["Parameter"]["Value"]
    except Exception as exc:
        raise StackError(
            f"no local cloud answers at {endpoint_url} ({type(exc).__name__}); start one with `herald local`"
        ) from None
    return dict(json.loads(value))


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The Outputs of a CloudFormation stack, by OutputKey."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        raise StackError(f"cannot describe stack {stack_name!r}: {exc}") from None
    if not stacks:
        raise StackError(f"no stack named {stack_name!r}")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def resolve(
    *,
    stack: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> Target:
    """The stack named ``stack`` on AWS, else the local cloud at ``endpoint_url`` (or the default:
    ``AWS_ENDPOINT_URL``, else ``http://127.0.0.1:4566``)."""
    if stack and endpoint_url:
        raise StackError("give either --stack (AWS) or --endpoint-url (the local cloud), not both")
    if stack:
        import boto3

        session = boto3.Session(profile_name=profile, region_name=region)
        resolved_region = session.region_name
        if not resolved_region:
            raise StackError("no region: pass --region or set AWS_REGION")
        outputs = stack_outputs(session.client("cloudformation"), stack)
        return Target(stack_name=stack, outputs=outputs, region=resolved_region, profile=profile)
    url = endpoint_url or default_endpoint()
    info = local_info(url)
    outputs = {str(k): str(v) for k, v in (info.get("outputs") or {}).items()}
    return Target(
        stack_name=LOCAL_STACK_NAME,
        outputs=outputs,
        region=str(info.get("region") or LOCAL_REGION),
        endpoint_url=url,
        local_info=info,
    )
