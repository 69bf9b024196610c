"""A stack's whole life: rendering a community's site again, and tearing the stack down.

- :func:`republish`: one community's pages, feeds and QR code rendered again with the settings the
  publisher runs with now (after ``PublicSiteUrl`` changed, say): the publisher function is invoked
  with its ``republish`` event (functions/publisher/app.py), on AWS through Lambda's Invoke, on the
  local cloud in a fresh worker as ``herald invoke`` runs one. Nothing is rendered here.
- :func:`plan_teardown` and :func:`teardown`: everything a stack made, including what it keeps on
  deletion on purpose (``DeletionPolicy: RetainExceptOnCreate``: the buckets, the tables, the
  member-token secret, the log groups), removed: see docs/deploy.md, "Teardown".

Each returns JSON-ready data; ``render_*`` turn it into text; ``herald_tools.cli`` wires them up.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from herald_tools.stack import Target

Progress = Callable[[str], None]

PUBLISHER = "PublisherFunction"
#: Seconds Lambda may take to answer a republish: the publisher's timeout (300 s) and a margin.
REPUBLISH_READ_TIMEOUT = 360
#: Keys per DeleteObjects request (S3's limit) and per ListObjectVersions page.
DELETE_PAGE = 1000
#: Days Secrets Manager keeps a deleted secret restorable (its least is 7).
SECRET_RECOVERY_DAYS = 7
STAGE_PARAMETER = "Stage"
PROD = "prod"
#: What the publisher's answer to a republish holds, by type (functions/publisher/app.py ``republish``).
REPUBLISH_ANSWER: dict[str, type] = {
    "community": str,
    "mode": str,
    "rendered": int,
    "written": list,
    "unchanged": int,
    "deleted": list,
    "url": str,
}


class OperationFailed(SystemExit):
    """The operation cannot go on; its one line names the command."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"herald {command}: {message}")


def _noop(_message: str) -> None:
    return None


# -- republish -------------------------------------------------------------------------------------


def republish_event(community: str) -> dict[str, Any]:
    """The publisher function's event for rendering ``community``'s whole site again."""
    return {"v": 1, "kind": "republish", "community": community}


def republish(target: Target, community: str, *, invalidate: bool = True) -> dict[str, Any]:
    """Have the publisher render ``community``'s site again; on AWS, then invalidate CloudFront's
    copies of ``/<community>/*`` (the QR code is cached for a day, pages for minutes)."""
    from herald.content.ids import COMMUNITY_ID_PATTERN, is_community_id

    if not is_community_id(community):
        raise OperationFailed("republish", f"{community!r} is not a community id ({COMMUNITY_ID_PATTERN})")
    event = republish_event(community)
    data = _republish_answer(_invoke_local(target, event) if target.is_local else _invoke_aws(target, event))
    data["where"] = target.where
    data["invalidation"] = None
    distribution = target.outputs.get("SiteDistributionId")
    if invalidate and not target.is_local and distribution and (data["written"] or data["deleted"]):
        created = target.client("cloudfront").create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [f"/{community}/*"]},
                "CallerReference": f"herald-republish-{community}-{time.time_ns()}",
            },
        )
        data["invalidation"] = created["Invalidation"]["Id"]
    return data


def _republish_answer(answer: Any) -> dict[str, Any]:
    """The publisher's answer as a republish result; anything else (a publisher deployed before
    republish existed answers ``{"batchItemFailures": []}``) ends the command, naming the answer."""
    if isinstance(answer, dict) and all(isinstance(answer.get(k), t) for k, t in REPUBLISH_ANSWER.items()):
        return dict(answer)
    shown = json.dumps(answer, ensure_ascii=True, default=str)
    raise OperationFailed(
        "republish",
        "the publisher's answer is not a republish result (was the stack deployed before this version "
        f"of Herald? deploy it again): {shown[:300]}",
    )


def _failed(error_type: Any, message: Any) -> OperationFailed:
    text = " ".join(str(message or "").split())
    return OperationFailed("republish", f"the publisher failed: {error_type or 'Error'}: {text}")


def _invoke_local(target: Target, event: dict[str, Any]) -> Any:
    from herald_tools.localcloud.functions import LogSink
    from herald_tools.localcloud.invoke import UnknownFunction, find_function, invoke_once

    try:
        spec, extra_env = find_function(
            target.client("ssm"), target.local_info.get("functions") or {}, PUBLISHER
        )
    except UnknownFunction as exc:
        raise OperationFailed("republish", str(exc)) from None
    assert target.endpoint_url is not None
    logs = LogSink(io.StringIO())  # the function's own log lines: its result says what it did
    try:
        result = invoke_once(spec, target.endpoint_url, event, logs=logs, extra_env=extra_env)
    finally:
        logs.close()
    if not result.ok:
        raise _failed(result.error_type, result.error_message)
    return result.result


def _invoke_aws(target: Target, event: dict[str, Any]) -> Any:
    """The publisher's answer to ``event`` through Lambda's Invoke (its JSON, decoded); the error
    it raised (``FunctionError``) ends the command."""
    import boto3
    from botocore.config import Config

    name = target.output("PublisherFunctionName")
    # One attempt, read for as long as the function may run: a retry would render the site twice.
    config = Config(read_timeout=REPUBLISH_READ_TIMEOUT, retries={"total_max_attempts": 1})
    client = boto3.Session(profile_name=target.profile, region_name=target.region).client(
        "lambda", config=config
    )
    response = client.invoke(
        FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        payload = payload if isinstance(payload, dict) else {}
        raise _failed(payload.get("errorType"), payload.get("errorMessage"))
    return payload


def render_republish(data: dict[str, Any]) -> str:
    lines = [
        f"republished {data['community']} on {data['where']}: {data['rendered']} file(s) rendered, "
        f"{len(data['written'])} written, {data['unchanged']} unchanged, {len(data['deleted'])} deleted",
        f"  its pages, feeds and QR code name {data['url']}",
    ]
    if data.get("invalidation"):
        lines.append(f"  CloudFront invalidation {data['invalidation']} of /{data['community']}/*")
    return "\n".join(lines)


# -- teardown --------------------------------------------------------------------------------------


@dataclass
class TeardownPlan:
    """What a teardown removes: the stack and the resources it lists, by physical id."""

    stack_name: str
    stack_id: str
    stage: str | None
    region: str
    buckets: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    log_groups: list[str] = field(default_factory=list)

    @property
    def is_prod(self) -> bool:
        return self.stage == PROD

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack_name,
            "stack_id": self.stack_id,
            "stage": self.stage,
            "region": self.region,
            "buckets": self.buckets,
            "tables": self.tables,
            "secrets": self.secrets,
            "log_groups": self.log_groups,
        }


_KINDS = {
    "AWS::S3::Bucket": "buckets",
    "AWS::DynamoDB::Table": "tables",
    "AWS::SecretsManager::Secret": "secrets",
    "AWS::Logs::LogGroup": "log_groups",
}


def teardown_session(profile: str | None, region: str | None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile, region_name=region)


def plan_teardown(session: Any, stack_name: str) -> TeardownPlan:
    """The stack's id, stage and the resources a teardown removes (read before anything changes)."""
    cloudformation = session.client("cloudformation")
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    plan = TeardownPlan(
        stack_name=stack["StackName"],
        stack_id=stack["StackId"],
        stage=parameters.get(STAGE_PARAMETER),
        region=session.region_name,
    )
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=plan.stack_id):
        for resource in page.get("StackResourceSummaries", []):
            kind = _KINDS.get(resource.get("ResourceType", ""))
            physical = resource.get("PhysicalResourceId")
            if kind and physical and resource.get("ResourceStatus") != "DELETE_COMPLETE":
                getattr(plan, kind).append(physical)
    for kind in _KINDS.values():
        getattr(plan, kind).sort()
    return plan


def render_plan(plan: TeardownPlan) -> str:
    """What the confirmation shows: everything that will be gone, by name."""
    lines = [
        f"herald teardown deletes stack {plan.stack_name} (stage {plan.stage or '?'}, {plan.region}) and:"
    ]
    for label, names in (
        ("bucket (every object version and delete marker)", plan.buckets),
        ("table (deletion protection turned off)", plan.tables),
        (f"secret (restorable for {SECRET_RECOVERY_DAYS} days)", plan.secrets),
        ("log group", plan.log_groups),
    ):
        lines += [f"  {label}: {name}" for name in names]
    lines.append("This cannot be undone.")
    return "\n".join(lines)


def _exists(call: Callable[[], Any], *missing: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in missing:
            return False
        raise
    return True


def empty_bucket(s3: Any, bucket: str) -> dict[str, int]:
    """Every object version and delete marker of ``bucket`` deleted, 1,000 per DeleteObjects; its
    event notifications stopped first (so the deletes reach no queue). The listing starts over
    after each page, so what is deleted meanwhile cannot shift a marker."""
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    if any(notifications.values()):
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    versions = markers = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=DELETE_PAGE)
        found = [(v["Key"], v["VersionId"], False) for v in page.get("Versions", [])]
        found += [(m["Key"], m["VersionId"], True) for m in page.get("DeleteMarkers", [])]
        if not found:
            return {"versions": versions, "delete_markers": markers}
        for start in range(0, len(found), DELETE_PAGE):
            chunk = found[start : start + DELETE_PAGE]
            response = s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k, "VersionId": v} for k, v, _ in chunk], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise OperationFailed(
                    "teardown",
                    f"cannot delete {first.get('Key')} (version {first.get('VersionId')}) of bucket "
                    f"{bucket}: {first.get('Message', '').rstrip('.')} ({first.get('Code')}); "
                    f"{len(errors)} of {len(chunk)} not deleted",
                )
            versions += sum(1 for *_, marker in chunk if not marker)
            markers += sum(1 for *_, marker in chunk if marker)


def _wait_deleted(cloudformation: Any, stack_id: str, poll_s: float, timeout_s: float) -> None:
    """Until the stack is DELETE_COMPLETE; a DELETE_FAILED says which resources and why."""
    deadline = time.monotonic() + timeout_s
    while True:
        [stack] = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        status = stack["StackStatus"]
        if status == "DELETE_COMPLETE":
            return
        if status == "DELETE_FAILED":
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]
                if e.get("ResourceStatus") == "DELETE_FAILED" and e["LogicalResourceId"] != stack["StackName"]
            ]
            why = "; ".join(" ".join(r.split()) for r in reasons[:3]) or stack.get("StackStatusReason", "")
            raise OperationFailed("teardown", f"deleting stack {stack['StackName']} failed: {why}")
        if time.monotonic() > deadline:
            raise OperationFailed(
                "teardown", f"stack {stack['StackName']} is still {status} after {timeout_s:.0f} s"
            )
        time.sleep(poll_s)


def teardown(
    session: Any,
    plan: TeardownPlan,
    *,
    progress: Progress = _noop,
    poll_s: float = 5.0,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Remove the stack and everything ``plan`` lists, saying each step as it is done.

    1. the buckets' notifications stopped and every version and delete marker deleted, and the
       tables' deletion protection turned off (so CloudFormation can delete what it does not keep);
    2. the stack deleted, waited for (its functions and queues go: nothing writes any more);
    3. what the stack kept on purpose deleted: the buckets (emptied again: a function may have
       written meanwhile), the tables, the secrets (restorable for 7 days), the log groups.
    """
    s3 = session.client("s3")
    dynamodb = session.client("dynamodb")
    cloudformation = session.client("cloudformation")
    done: dict[str, Any] = {**plan.as_dict(), "emptied": {}, "deleted": [], "with_stack": []}

    def bucket_exists(name: str) -> bool:
        return _exists(lambda: s3.head_bucket(Bucket=name), "404", "NoSuchBucket", "NotFound")

    def table_exists(name: str) -> bool:
        return _exists(lambda: dynamodb.describe_table(TableName=name), "ResourceNotFoundException")

    def emptied(name: str) -> None:
        counts = empty_bucket(s3, name)
        seen = done["emptied"].setdefault(name, {"versions": 0, "delete_markers": 0})
        seen["versions"] += counts["versions"]
        seen["delete_markers"] += counts["delete_markers"]
        progress(
            f"emptied bucket {name}: {counts['versions']} object version(s), "
            f"{counts['delete_markers']} delete marker(s)"
        )

    for name in plan.buckets:
        if bucket_exists(name):
            emptied(name)
    for name in plan.tables:
        if table_exists(name):
            table = dynamodb.describe_table(TableName=name)["Table"]
            if table.get("DeletionProtectionEnabled"):
                dynamodb.update_table(TableName=name, DeletionProtectionEnabled=False)
                progress(f"turned off deletion protection of table {name}")

    cloudformation.delete_stack(StackName=plan.stack_id)
    progress(f"deleting stack {plan.stack_name}…")
    _wait_deleted(cloudformation, plan.stack_id, poll_s, timeout_s)
    done["deleted"].append(f"stack {plan.stack_name}")
    progress(f"deleted stack {plan.stack_name}")

    for name in plan.buckets:
        if not bucket_exists(name):
            done["with_stack"].append(f"bucket {name}")
            continue
        emptied(name)
        s3.delete_bucket(Bucket=name)
        done["deleted"].append(f"bucket {name}")
        progress(f"deleted bucket {name}")
    for name in plan.tables:
        if not table_exists(name):
            done["with_stack"].append(f"table {name}")
            continue
        dynamodb.delete_table(TableName=name)
        dynamodb.get_waiter("table_not_exists").wait(
            TableName=name, WaiterConfig={"Delay": max(1, int(poll_s)), "MaxAttempts": 120}
        )
        done["deleted"].append(f"table {name}")
        progress(f"deleted table {name}")
    secrets = session.client("secretsmanager")
    for arn in plan.secrets:
        try:
            described = secrets.describe_secret(SecretId=arn)
        except secrets.exceptions.ResourceNotFoundException:
            described = None
        if described is None or described.get("DeletedDate"):
            done["with_stack"].append(f"secret {arn}")
            continue
        secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=SECRET_RECOVERY_DAYS)
        done["deleted"].append(f"secret {arn} (restorable for {SECRET_RECOVERY_DAYS} days)")
        progress(f"scheduled secret {arn} for deletion in {SECRET_RECOVERY_DAYS} days")
    logs = session.client("logs")
    for name in plan.log_groups:
        try:
            logs.delete_log_group(logGroupName=name)
        except logs.exceptions.ResourceNotFoundException:
            done["with_stack"].append(f"log group {name}")
            continue
        done["deleted"].append(f"log group {name}")
        progress(f"deleted log group {name}")
    return done


def render_teardown(data: dict[str, Any]) -> str:
    lines = [f"tore down stack {data['stack']} ({data['region']}):"]
    for name, counts in data["emptied"].items():
        lines.append(
            f"  emptied bucket {name}: {counts['versions']} object version(s), "
            f"{counts['delete_markers']} delete marker(s)"
        )
    lines += [f"  deleted {what}" for what in data["deleted"]]
    lines += [f"  deleted with the stack: {what}" for what in data["with_stack"]]
    return "\n".join(lines)
