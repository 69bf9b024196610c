"""Lambda's SQS event shape and batch-failure rules (no server needed)."""

import base64

from herald_tools.localcloud.event_sources import dynamodb_record, failed_message_ids, sqs_record
from herald_tools.localcloud.functions import InvocationResult

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:q"


def test_sqs_record_has_lambdas_shape():
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "md5",
        "MD5OfMessageAttributes": "md5a",
        "Body": "hello",
        "Attributes": {
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "2",
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1",
        },
        "MessageAttributes": {
            "s": {"StringValue": "v", "DataType": "String"},
            "b": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }
    record = sqs_record(message, QUEUE_ARN)
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfMessageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ]
    assert record["messageAttributes"] == {
        "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "b": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        QUEUE_ARN,
        "us-east-1",
    )


def ok(result) -> InvocationResult:
    return InvocationResult(ok=True, request_id="r", result=result)


def test_batch_failure_rules():
    ids = ["a", "b", "c"]
    failed = InvocationResult(ok=False, request_id="r", error_type="RuntimeError")
    assert failed_message_ids(failed, ids, True) == set(ids)
    assert failed_message_ids(failed, ids, False) == set(ids)
    assert failed_message_ids(ok(None), ids, True) == set()
    assert failed_message_ids(ok({"batchItemFailures": []}), ids, True) == set()
    assert failed_message_ids(ok({"batchItemFailures": [{"itemIdentifier": "b"}]}), ids, True) == {"b"}
    # Without ReportBatchItemFailures a normal return deletes everything.
    assert failed_message_ids(ok({"batchItemFailures": [{"itemIdentifier": "b"}]}), ids, False) == set()
    # An unknown or empty identifier fails the whole batch, as on AWS.
    assert failed_message_ids(ok({"batchItemFailures": [{"itemIdentifier": "zz"}]}), ids, True) == set(ids)
    assert failed_message_ids(ok({"batchItemFailures": [{"itemIdentifier": ""}]}), ids, True) == set(ids)


def test_dynamodb_record_shape():
    import datetime

    record = {
        "eventID": "e1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            "Keys": {"id": {"S": "k"}},
            "NewImage": {"id": {"S": "k"}, "b": {"B": b"\x01"}},
            "SequenceNumber": "1",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    out = dynamodb_record(record, "arn:stream")
    assert out["eventSourceARN"] == "arn:stream"
    assert out["dynamodb"]["ApproximateCreationDateTime"] == 1704067200
    assert out["dynamodb"]["NewImage"]["b"] == {"B": "AQ=="}
