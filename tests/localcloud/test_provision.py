"""Provisioning a template inside moto's in-process mock."""

import json

import boto3
import pytest
from moto import mock_aws

from herald_tools.localcloud.provision import local_bucket_policy, provision

from .conftest import MINI_TEMPLATE, PROJECT_TEMPLATE


@pytest.fixture
def session():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_mini_template_resources(session):
    res = provision(MINI_TEMPLATE, session)
    s3 = session.client("s3")
    sqs = session.client("sqs")
    ddb = session.client("dynamodb")

    assert res.uploads_bucket == "herald-dev-uploads-123456789012-us-east-1"
    assert s3.get_bucket_versioning(Bucket=res.uploads_bucket)["Status"] == "Enabled"
    enc = s3.get_bucket_encryption(Bucket=res.uploads_bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    pab = s3.get_public_access_block(Bucket=res.uploads_bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values())
    notif = s3.get_bucket_notification_configuration(Bucket=res.uploads_bucket)["QueueConfigurations"]
    queue_arn = res.attr("IngestQueue", "Arn")
    assert {(n["QueueArn"], n["Events"][0]) for n in notif} == {
        (queue_arn, "s3:ObjectCreated:*"),
        (queue_arn, "s3:ObjectRemoved:*"),
    }
    assert notif[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "posts/"}]

    attrs = sqs.get_queue_attributes(QueueUrl=res.ingest_queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": res.attr("IngestDeadLetterQueue", "Arn"), "maxReceiveCount": 5}
    assert attrs["VisibilityTimeout"] == "360"
    assert "s3.amazonaws.com" in attrs["Policy"]

    table = ddb.describe_table(TableName=res.content_table)["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert (
        table["LatestStreamArn"]
        == res.attr("ContentTable", "StreamArn")
        == res.outputs["ContentTableStreamArn"]
    )
    ttl = ddb.describe_time_to_live(TableName=res.content_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    assert session.client("ssm").get_parameter(Name="/herald/dev/first-extra")["Parameter"]["Value"] == "a"
    assert (
        session.client("sns").get_topic_attributes(TopicArn=res["AlarmTopic"])["Attributes"]["DisplayName"]
        == "Herald dev alarms"
    )
    groups = session.client("logs").describe_log_groups()["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        ("/aws/lambda/herald-dev-IngestFunction", 7)
    ]
    assert "ProdOnly" not in res.outputs


def test_mini_template_functions(session):
    res = provision(MINI_TEMPLATE, session)
    ingest = res.functions["IngestFunction"]
    assert ingest.name == "herald-dev-IngestFunction"
    assert ingest.handler == "app.handler" and ingest.module == "app"
    assert ingest.code_dir.name == "ingest" and ingest.code_dir.is_absolute()
    assert ingest.layers and ingest.layers[0].name == "shared"
    assert (ingest.timeout, ingest.memory_size) == (60, 256)
    assert ingest.environment == {
        "POWERTOOLS_SERVICE_NAME": "herald",
        "HERALD_STAGE": "dev",
        "CONTENT_TABLE": res.content_table,
        "UPLOADS_BUCKET": res.uploads_bucket,
        "MAX_POST_BYTES": "65536",
        "TABLE_ARN": res.attr("ContentTable", "Arn"),
        "TOPIC_ARN": res["AlarmTopic"],
        "SPLIT_LAST": "y",
        "LITERAL": "${NotAVariable}",
    }
    (source,) = ingest.events
    assert source.type == "SQS"
    assert source.queue_url == res.ingest_queue_url
    assert source.batch_size == 10 and source.maximum_batching_window == 1
    assert source.report_batch_item_failures

    (stream,) = res.functions["FeedFunction"].events
    assert stream.type == "DynamoDB"
    assert stream.source_arn == res.attr("ContentTable", "StreamArn")
    assert stream.starting_position == "TRIM_HORIZON" and stream.batch_size == 25
    assert res.functions["FeedFunction"].timeout == 30  # from Globals


def test_parameter_overrides_and_conditions(session):
    res = provision(MINI_TEMPLATE, session, parameters={"Stage": "prod"})
    assert res.uploads_bucket == "herald-prod-uploads-123456789012-us-east-1"
    assert res.skipped["SiteSetting"] == "condition is false"
    assert res.outputs["ProdOnly"] == "prod"


@pytest.mark.skipif(not PROJECT_TEMPLATE.exists(), reason="template.yaml not written yet")
def test_project_template(session):
    res = provision(PROJECT_TEMPLATE, session)
    for key in ("UploadsBucketName", "IngestQueueUrl", "IngestDeadLetterQueueUrl", "ContentTableName"):
        assert key in res.outputs
    assert res.uploads_bucket == res.outputs["UploadsBucketName"]
    s3 = session.client("s3")
    assert s3.get_bucket_notification_configuration(Bucket=res.uploads_bucket)["QueueConfigurations"]
    sqs = session.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=res.ingest_queue_url, AttributeNames=["RedrivePolicy"])
    assert json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 5
    ingest = res.functions["IngestFunction"]
    assert ingest.environment["CONTENT_TABLE"] == res.content_table
    assert any(e.type == "SQS" and e.queue_url == res.ingest_queue_url for e in ingest.events)
    # The bucket policy's "deny without TLS" must not lock the local (plain HTTP) cloud out.
    s3.put_object(Bucket=res.uploads_bucket, Key="posts/demo/a.md", Body=b"hello")


def test_conditional_denies_are_left_out_of_local_bucket_policies():
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    deny_tls = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::b/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    deny_all = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::b"}
    policy = {"Version": "2012-10-17", "Statement": [allow, deny_tls, deny_all]}
    assert local_bucket_policy(policy) == {"Version": "2012-10-17", "Statement": [allow, deny_all]}
    assert local_bucket_policy({"Version": "2012-10-17", "Statement": [deny_tls]}) is None
