"""The fan-out marker on moto (the content table's ``FANOUT#<post>`` item): the first push recorded
once, each follow-up once per language with the languages pushed before it, nothing before the first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from herald.site.adapters.dynamo_fanout import DynamoFanoutMarker, fanout_marker_key
from tests.integration.conftest import REGION

TABLE = "content"


@pytest.fixture(name="ddb")
def ddb_fixture(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_the_first_push_is_recorded_once_with_its_languages(ddb: Any) -> None:
    marker = DynamoFanoutMarker(TABLE, ddb)
    assert marker.follow_up("harbour", "p1", "fr") == ("not started", [])  # the language goes with it
    assert marker.start_fanout("harbour", "p1", ["en", "ar"], 1_000.0) == ("started", ["en", "ar"])
    # The window's wake-up after the stream record (or a retried batch): the languages of the first.
    assert marker.start_fanout("harbour", "p1", ["en", "ar", "fr"], 1_001.0) == ("already", ["en", "ar"])
    item = ddb.get_item(TableName=TABLE, Key=fanout_marker_key("harbour", "p1"))["Item"]
    assert item["pk"]["S"] == "C#harbour" and item["sk"]["S"] == "FANOUT#p1"
    assert int(item["expires_at"]["N"]) == 1_000 + 180 * 24 * 3600
    assert "gsi1pk" not in item  # never in the feed


def test_each_follow_up_once_per_language_with_what_was_pushed_before(ddb: Any) -> None:
    marker = DynamoFanoutMarker(TABLE, ddb)
    marker.start_fanout("harbour", "p2", ["en"], 1_000.0)
    assert marker.follow_up("harbour", "p2", "fr") == ("started", ["en"])
    assert marker.follow_up("harbour", "p2", "fr") == ("already", ["en"])  # a repeat: the same wave
    assert marker.follow_up("harbour", "p2", "ar") == ("started", ["en", "fr"])
    assert marker.follow_up("harbour", "p2", "en") == ("already", ["en", "fr", "ar"])  # the first push's
    item = ddb.get_item(TableName=TABLE, Key=fanout_marker_key("harbour", "p2"))["Item"]
    assert [v["S"] for v in item["pushed"]["L"]] == ["en", "fr", "ar"]
    assert [v["S"] for v in item["first"]["L"]] == ["en"]
    # Another post's marker is its own.
    assert marker.follow_up("harbour", "p3", "fr") == ("not started", [])


def test_a_follow_up_that_loses_a_race_decides_again_on_a_fresh_read(ddb: Any) -> None:
    marker = DynamoFanoutMarker(TABLE, ddb)
    marker.start_fanout("harbour", "p4", ["en"], 1_000.0)
    real = ddb.get_item
    raced: list[str] = []

    def get_item(**kwargs: Any) -> Any:
        answer = real(**kwargs)
        if not raced:  # another publisher records ar between this read and the write
            raced.append("ar")
            DynamoFanoutMarker(TABLE, boto3.client("dynamodb", region_name=REGION)).follow_up(
                "harbour", "p4", "ar"
            )
        return answer

    ddb.get_item = get_item
    assert marker.follow_up("harbour", "p4", "fr") == ("started", ["en", "ar"])
    ddb.get_item = real
    item = ddb.get_item(TableName=TABLE, Key=fanout_marker_key("harbour", "p4"))["Item"]
    assert [v["S"] for v in item["pushed"]["L"]] == ["en", "ar", "fr"]
