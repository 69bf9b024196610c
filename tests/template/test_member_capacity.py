"""template.yaml holds what 10,000 joins a second on one community need (docs/members.md,
"Capacity"): the stage throttle, the API function's reserved concurrency, the members table's and
its index's warm throughput, enough counter shards for the index's hot partitions, and the member
counter's event source as the count's exactness depends on it.

The per-join costs are the measured ones: 2 items written on the table and 1 index entry
(tests/integration/test_member_writes.py), and the API function's time per join
(docs/members.md; ``infra/herald_tools/bench/members.py`` measures its CPU part). The limits are
AWS's documented defaults, cited in docs/members.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from herald.members.adapters.dynamo_members import CLAIM_GRACE_S
from herald_tools.localcloud.template import load_template_text

ROOT = Path(__file__).resolve().parents[2]

JOINS_PER_S = 10_000
TABLE_WRITE_UNITS_PER_JOIN = 2  # the claim and the member, each under 1 KB
INDEX_WRITE_UNITS_PER_JOIN = 1  # the member's gsi1 entry
#: The API function's duration per join on Lambda at its memory size (docs/members.md, "Capacity").
LAMBDA_SECONDS_PER_JOIN = 0.030
PARTITION_WRITE_UNITS_PER_S = 1_000  # one partition key of a table or index
ACCOUNT_CONCURRENCY = 1_000  # Lambda's default per account and region
UNRESERVED_AT_LEAST = 100  # concurrency Lambda keeps unreserved


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template_text((ROOT / "template.yaml").read_text())


def test_the_stage_lets_the_burst_through(raw: dict[str, Any]) -> None:
    [settings] = raw["Resources"]["HeraldApi"]["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] >= JOINS_PER_S
    assert settings["ThrottlingBurstLimit"] >= JOINS_PER_S


def test_the_api_function_is_reserved_what_the_burst_keeps_busy(raw: dict[str, Any]) -> None:
    reserved = int(raw["Parameters"]["ApiReservedConcurrency"]["Default"])
    busy = math.ceil(JOINS_PER_S * LAMBDA_SECONDS_PER_JOIN)
    assert busy <= reserved <= ACCOUNT_CONCURRENCY - UNRESERVED_AT_LEAST


def test_the_members_table_and_its_index_are_warm_for_the_burst(raw: dict[str, Any]) -> None:
    table = raw["Resources"]["MembersTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["WarmThroughput"]["WriteUnitsPerSecond"] >= JOINS_PER_S * TABLE_WRITE_UNITS_PER_JOIN
    [index] = table["GlobalSecondaryIndexes"]
    assert index["Projection"]["ProjectionType"] == "ALL"  # an entry is the whole member
    assert index["WarmThroughput"]["WriteUnitsPerSecond"] >= JOINS_PER_S * INDEX_WRITE_UNITS_PER_JOIN


def test_the_index_partitions_of_one_community_stay_under_a_partitions_limit(raw: dict[str, Any]) -> None:
    # A community's members are spread over its K counter shards' gsi1 partitions.
    shards = int(raw["Parameters"]["MemberCounterShards"]["Default"])
    assert JOINS_PER_S * INDEX_WRITE_UNITS_PER_JOIN / shards <= PARTITION_WRITE_UNITS_PER_S / 2


def test_a_join_between_its_two_writes_is_never_taken_for_left_over(raw: dict[str, Any]) -> None:
    # A claim younger than CLAIM_GRACE_S without its member may be a join still running.
    assert int(raw["Resources"]["ApiFunction"]["Properties"]["Timeout"]) * 3 <= CLAIM_GRACE_S


def test_the_counter_reads_each_stream_shard_in_order_and_retries_batches_whole(raw: dict[str, Any]) -> None:
    events = raw["Resources"]["MemberCounterFunction"]["Properties"]["Events"]
    [props] = [e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]
    assert props["Stream"] == {"Fn::GetAtt": ["MembersTable", "StreamArn"]}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    # A retried batch starts with the same record (the count markers are named by it).
    assert props["ParallelizationFactor"] == 1 and props["BisectBatchOnFunctionError"] is False
    assert "FunctionResponseTypes" not in props
    assert props["MaximumRetryAttempts"] == 10_000 and props["MaximumRecordAgeInSeconds"] == -1
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["MemberCounterDeadLetterQueue", "Arn"]
    }
    assert props["BatchSize"] == 1_000 and props["MaximumBatchingWindowInSeconds"] <= 1
    [pattern] = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert pattern == {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "M#"}]}, "sk": {"S": ["MEMBER"]}}}}
    stream = raw["Resources"]["MembersTable"]["Properties"]["StreamSpecification"]
    assert stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"
