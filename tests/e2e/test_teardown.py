"""``herald teardown`` against a moto server: a stack made from a small template with versioned
buckets holding versions and delete markers, and tables with deletion protection, some kept on
deletion (``DeletionPolicy: Retain``, as Herald's ``RetainExceptOnCreate`` is once created) and
some not, and a secret kept on deletion as Herald's member-token secret is; after the teardown
nothing of it is left but the secret, scheduled for deletion and restorable meanwhile.

The moto server and the CLI's environment: tests/e2e/moto_server.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from herald_tools.lifecycle import SECRET_RECOVERY_DAYS
from tests.e2e.moto_server import REGION, aws_fixture, endpoint_fixture, run  # noqa: F401

pytestmark = pytest.mark.e2e


def stack_template() -> str:
    def table(retain: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "DeletionProtectionEnabled": True,
            },
        }
        return {**body, "DeletionPolicy": "Retain"} if retain else body

    resources = {
        "UploadsBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "SiteBucket": {"Type": "AWS::S3::Bucket"},  # CloudFormation deletes it: emptied first
        "ContentTable": table(retain=True),
        "MembersTable": table(retain=False),  # CloudFormation deletes it: protection off first
        "IngestFunctionLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${AWS::StackName}-ingest"}},
        },
        "IngestQueue": {"Type": "AWS::SQS::Queue"},
        "MemberTokenSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "DeletionPolicy": "Retain",
            "Properties": {"Description": "key of the member tokens"},
        },
    }
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
            "Resources": resources,
            "Outputs": {
                "UploadsBucketName": {"Value": {"Ref": "UploadsBucket"}},
                "SiteBucketName": {"Value": {"Ref": "SiteBucket"}},
                "ContentTableName": {"Value": {"Ref": "ContentTable"}},
                "MembersTableName": {"Value": {"Ref": "MembersTable"}},
            },
        }
    )


class Stack:
    def __init__(self, session: boto3.Session, name: str, stage: str) -> None:
        self.session, self.name = session, name
        cloudformation = session.client("cloudformation")
        self.id = cloudformation.create_stack(
            StackName=name,
            TemplateBody=stack_template(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
        )["StackId"]
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        self.buckets = [self.outputs["UploadsBucketName"], self.outputs["SiteBucketName"]]
        self.tables = [self.outputs["ContentTableName"], self.outputs["MembersTableName"]]
        self.log_group = f"/aws/lambda/{name}-ingest"
        self.secret = cloudformation.describe_stack_resource(
            StackName=name, LogicalResourceId="MemberTokenSecret"
        )["StackResourceDetail"]["PhysicalResourceId"]

    def fill(self, objects: int) -> dict[str, dict[str, int]]:
        """Versioned buckets with two versions of each object and, for every third, a delete marker;
        the uploads bucket notifies a queue outside the stack. Returns what each bucket holds."""
        s3 = self.session.client("s3")
        held = {}
        for bucket in self.buckets:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            markers = 0
            for i in range(objects):
                key = f"posts/c/{i:04d}.txt"
                s3.put_object(Bucket=bucket, Key=key, Body=b"one")
                s3.put_object(Bucket=bucket, Key=key, Body=b"two")
                if i % 3 == 0:
                    s3.delete_object(Bucket=bucket, Key=key)
                    markers += 1
            held[bucket] = {"versions": 2 * objects, "delete_markers": markers}
        return held

    def gone(self) -> None:
        """Nothing of the stack is left: no stack, bucket, table or log group, and its secret is
        scheduled for deletion after the recovery window (restorable until then)."""
        cloudformation = self.session.client("cloudformation")
        [stack] = cloudformation.describe_stacks(StackName=self.id)["Stacks"]
        assert stack["StackStatus"] == "DELETE_COMPLETE"
        names = {b["Name"] for b in self.session.client("s3").list_buckets()["Buckets"]}
        assert not names & set(self.buckets)
        assert not set(self.session.client("dynamodb").list_tables()["TableNames"]) & set(self.tables)
        groups = self.session.client("logs").describe_log_groups(logGroupNamePrefix=self.log_group)
        assert groups["logGroups"] == []
        secret = self.session.client("secretsmanager").describe_secret(SecretId=self.secret)
        assert secret["ARN"] == self.secret and "DeletedDate" in secret, secret

    def intact(self) -> None:
        cloudformation = self.session.client("cloudformation")
        [stack] = cloudformation.describe_stacks(StackName=self.id)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        dynamodb = self.session.client("dynamodb")
        for table in self.tables:
            assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
        s3 = self.session.client("s3")
        for bucket in self.buckets:
            assert s3.list_object_versions(Bucket=bucket).get("Versions")
        secret = self.session.client("secretsmanager").describe_secret(SecretId=self.secret)
        assert "DeletedDate" not in secret, secret


def test_teardown_empties_the_versioned_buckets_and_deletes_everything(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(aws, "herald-teardown-dev", "dev")
    # 1,234 objects: two versions each and 412 delete markers, so the listing takes several pages
    # of 1,000 and DeleteObjects several requests.
    held = stack.fill(objects=1234)
    sqs = aws.client("sqs")
    watcher = sqs.create_queue(QueueName="teardown-watcher")["QueueUrl"]
    watcher_arn = sqs.get_queue_attributes(QueueUrl=watcher, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=stack.buckets[0],
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": watcher_arn, "Events": ["s3:ObjectRemoved:*"]}]
        },
    )

    code, out, err = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, "--yes", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["emptied"] == held
    assert data["deleted"] == [
        f"stack {stack.name}",
        f"bucket {stack.outputs['UploadsBucketName']}",
        f"table {stack.outputs['ContentTableName']}",
        f"secret {stack.secret} (restorable for {SECRET_RECOVERY_DAYS} days)",
        f"log group {stack.log_group}",
    ]
    # What CloudFormation deleted itself, once emptied or unprotected:
    assert data["with_stack"] == [
        f"bucket {stack.outputs['SiteBucketName']}",
        f"table {stack.outputs['MembersTableName']}",
    ]
    # The names are on stderr before anything goes (what may be left to delete if it stops midway).
    assert err.startswith(f"herald teardown deletes stack {stack.name} (stage dev, {REGION}) and:\n")
    for table in stack.tables:
        assert f"turned off deletion protection of table {table}" in err
    assert f"deleted stack {stack.name}" in err
    assert f"  secret (restorable for {SECRET_RECOVERY_DAYS} days): {stack.secret}\n" in err
    assert f"scheduled secret {stack.secret} for deletion in {SECRET_RECOVERY_DAYS} days" in err
    stack.gone()
    # The uploads bucket's notifications were stopped before its objects went: no event of the deletes.
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=watcher, MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert not [b for b in bodies if "ObjectRemoved" in b], bodies[:1]


def test_the_typed_name_confirms_and_anything_else_changes_nothing(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(aws, "herald-teardown-typed", "dev")
    stack.fill(objects=3)

    code, out, err = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, stdin="herald-dev\n")
    assert code == 1 and out == ""
    assert f"herald teardown deletes stack {stack.name} (stage dev, {REGION}) and:" in err
    assert f"bucket (every object version and delete marker): {stack.buckets[0]}" in err
    assert f"table (deletion protection turned off): {stack.tables[1]}" in err
    assert f"secret (restorable for {SECRET_RECOVERY_DAYS} days): {stack.secret}" in err
    assert err.rstrip().endswith("herald teardown: not confirmed (typed 'herald-dev'); nothing was changed")
    stack.intact()

    code, out, err = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, stdin="")
    assert code == 1 and "not confirmed (typed '')" in err
    stack.intact()

    code, out, _ = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["stage"] == "dev" and sorted(plan["buckets"]) == sorted(stack.buckets)
    assert plan["log_groups"] == [stack.log_group] and plan["secrets"] == [stack.secret]
    stack.intact()

    code, out, err = run(
        capsys, "teardown", "--stack", stack.name, "--region", REGION, stdin=f"{stack.name}\n"
    )
    assert code == 0, err
    assert out.startswith(f"tore down stack {stack.name} ({REGION}):")
    assert f"  emptied bucket {stack.buckets[0]}: 6 object version(s), 1 delete marker(s)" in out
    assert f"  deleted secret {stack.secret} (restorable for {SECRET_RECOVERY_DAYS} days)" in out
    stack.gone()


def test_a_prod_stack_needs_its_name_typed_even_with_yes(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(aws, "herald-teardown-prod", "prod")
    stack.fill(objects=2)
    code, out, err = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, "--yes")
    assert code == 2 and out == ""
    assert err.strip() == (
        f"herald teardown: {stack.name} is a prod stack (Stage=prod): --yes is not accepted there; "
        "run it without --yes and type the stack's name"
    )
    stack.intact()
    code, _, err = run(capsys, "teardown", "--stack", stack.name, "--region", REGION, stdin=f"{stack.name}\n")
    assert code == 0, err
    stack.gone()


def test_a_stack_that_does_not_exist_is_one_line(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "teardown", "--stack", "herald-nowhere", "--region", REGION, "--yes")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith("herald teardown: cannot tear down stack herald-nowhere: "), line
    assert line.endswith("(ValidationError)"), line
