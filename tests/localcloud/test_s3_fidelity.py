"""S3 event records as S3 sends them, from moto's in-process mock with the fidelity patch."""

import json
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from herald_tools.localcloud import s3_fidelity

KEY = "posts/demo/Hello wörld.txt"


@pytest.fixture
def aws():
    patched = s3_fidelity.install()
    try:
        with mock_aws():
            yield boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    finally:
        if patched:
            s3_fidelity.uninstall()


def bucket_with_queue(s3, sqs, name: str, versioned: bool) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    return url


def records(sqs, url: str) -> list[dict]:
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            body = json.loads(m["Body"])
            out.extend(body.get("Records", []))  # skips s3:TestEvent
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_install_is_idempotent():
    first = s3_fidelity.install()
    try:
        assert s3_fidelity.install() is False
        assert s3_fidelity.installed()
    finally:
        if first:
            s3_fidelity.uninstall()


def test_versioned_bucket_put_put_delete(aws):
    s3, sqs = aws
    url = bucket_with_queue(s3, sqs, "fidelity-versioned", versioned=True)
    v1 = s3.put_object(Bucket="fidelity-versioned", Key=KEY, Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket="fidelity-versioned", Key=KEY, Body=b"two!")["VersionId"]
    deleted = s3.delete_object(Bucket="fidelity-versioned", Key=KEY)
    assert deleted["DeleteMarker"] is True

    recs = records(sqs, url)
    assert [r["eventName"] for r in recs] == [
        "ObjectCreated:Put",
        "ObjectCreated:Put",
        "ObjectRemoved:DeleteMarkerCreated",
    ]
    objects = [r["s3"]["object"] for r in recs]
    assert all(o["key"] == quote_plus(KEY) == "posts%2Fdemo%2FHello+w%C3%B6rld.txt" for o in objects)
    sequencers = [o["sequencer"] for o in objects]
    assert all(len(s) == 18 and int(s, 16) >= 0 for s in sequencers)
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == 3
    assert [o["versionId"] for o in objects] == [v1, v2, deleted["VersionId"]]
    assert (objects[0]["size"], objects[1]["size"]) == (3, 4)
    assert objects[0]["eTag"] and "size" not in objects[2] and "eTag" not in objects[2]
    for r in recs:
        assert r["userIdentity"]["principalId"]
        assert r["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
        assert set(r["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}
        assert r["s3"]["bucket"]["ownerIdentity"]["principalId"]


def test_deleting_a_version_sends_delete_with_that_version(aws):
    s3, sqs = aws
    url = bucket_with_queue(s3, sqs, "fidelity-version-delete", versioned=True)
    v1 = s3.put_object(Bucket="fidelity-version-delete", Key="a b", Body=b"1")["VersionId"]
    s3.put_object(Bucket="fidelity-version-delete", Key="a b", Body=b"2")
    s3.delete_object(Bucket="fidelity-version-delete", Key="a b", VersionId=v1)
    recs = records(sqs, url)
    assert recs[-1]["eventName"] == "ObjectRemoved:Delete"
    assert recs[-1]["s3"]["object"]["versionId"] == v1
    assert recs[-1]["s3"]["object"]["key"] == "a+b"


def test_unversioned_bucket(aws):
    s3, sqs = aws
    url = bucket_with_queue(s3, sqs, "fidelity-plain", versioned=False)
    s3.put_object(Bucket="fidelity-plain", Key=KEY, Body=b"one")
    s3.put_object(Bucket="fidelity-plain", Key=KEY, Body=b"two")
    s3.delete_object(Bucket="fidelity-plain", Key=KEY)
    recs = records(sqs, url)
    assert [r["eventName"] for r in recs] == [
        "ObjectCreated:Put",
        "ObjectCreated:Put",
        "ObjectRemoved:Delete",
    ]
    objects = [r["s3"]["object"] for r in recs]
    assert all("versionId" not in o for o in objects)
    sequencers = [o["sequencer"] for o in objects]
    assert sequencers == sorted(set(sequencers))
    assert objects[2] == {"key": quote_plus(KEY), "sequencer": sequencers[2]}


def test_copy_is_an_object_created_event(aws):
    s3, sqs = aws
    url = bucket_with_queue(s3, sqs, "fidelity-copy", versioned=False)
    s3.put_object(Bucket="fidelity-copy", Key="src", Body=b"x")
    s3.copy_object(Bucket="fidelity-copy", Key="dst", CopySource={"Bucket": "fidelity-copy", "Key": "src"})
    recs = records(sqs, url)
    assert [r["eventName"] for r in recs] == ["ObjectCreated:Put", "ObjectCreated:Copy"]
    assert recs[0]["s3"]["object"]["sequencer"] < recs[1]["s3"]["object"]["sequencer"]
