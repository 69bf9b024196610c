"""The member store tells a lost race from any other failed write by the cancellation reason of each
item of the transaction (``ConcurrentUpdate.reasons``), never by the text of a message: a leave
whose member's own item failed its guard has been left already.

botocore's Stubber answers the client: no AWS, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from herald.core.aws import as_conflict, as_domain_error, as_transient
from herald.core.errors import ConcurrentUpdate, RequestRefused, TransientError
from herald.members.adapters.dynamo_members import DynamoMemberStore, member_item
from herald.members.rules import Device, Member, subscription_id

COMMUNITY = "safe-routes"
AT = datetime(2026, 1, 1, tzinfo=UTC)
DEVICE = Device(platform="fcm", token="token-" + "x" * 20)
MEMBER = Member(
    community=COMMUNITY,
    member_id="a" * 32,
    shard=3,
    token_hash="h" * 64,
    subscriptions=[subscription_id(device=DEVICE)],
    device=DEVICE,
    endpoint_arn="arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1",
    joined_at=AT,
    updated_at=AT,
)


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoMemberStore, Stubber]]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield DynamoMemberStore("members", dynamodb=client), stubber


def _stored(stubber: Stubber) -> None:
    stubber.add_response("get_item", {"Item": member_item(MEMBER)})


def _cancelled(stubber: Stubber, codes: list[str], message: str = "Transaction cancelled") -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message=message,
        http_status_code=400,
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


def test_a_leave_whose_member_item_failed_its_guard_was_left_already(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    _stored(stubber)
    # The items: the member, its one claim, its counter shard. The member's guard failed.
    _cancelled(stubber, ["ConditionalCheckFailed", "None", "None"], message="no member item named here")
    assert store.remove(COMMUNITY, MEMBER.member_id, MEMBER.token_hash) is None
    stubber.assert_no_pending_responses()


def test_a_leave_that_lost_a_race_on_another_item_is_a_concurrent_update(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    _stored(stubber)
    # A message that names the member's guard does not count: the reasons decide.
    _cancelled(stubber, ["None", "None", "TransactionConflict"], message="member:ConditionalCheckFailed")
    with pytest.raises(ConcurrentUpdate) as raised:
        store.remove(COMMUNITY, MEMBER.member_id, MEMBER.token_hash)
    assert raised.value.reasons == ("None", "None", "TransactionConflict")
    assert not raised.value.guard_failed(0)


def test_a_cancellation_for_another_reason_is_not_a_lost_race(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    _cancelled(stubber, ["ThrottlingError", "None", "None"], message="ConditionalCheckFailed")
    with pytest.raises(TransientError) as raised:
        store.create(MEMBER)
    assert not isinstance(raised.value, ConcurrentUpdate)
    assert raised.value.code == "TransactionCanceledException"


def test_a_join_that_lost_a_race_carries_each_items_reason(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    _cancelled(stubber, ["None", "ConditionalCheckFailed", "None"])
    with pytest.raises(ConcurrentUpdate) as raised:
        store.create(MEMBER)
    assert raised.value.reasons == ("None", "ConditionalCheckFailed", "None")
    assert raised.value.guard_failed(1) and not raised.value.guard_failed(0)
    assert not raised.value.guard_failed(3) and not raised.value.guard_failed(-1)


def test_aws_errors_carry_their_code() -> None:
    from botocore.exceptions import ClientError, ConnectTimeoutError

    def client_error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "ConditionalCheckFailed"}}, "PutItem")

    throttled = as_domain_error(client_error("ThrottlingException"), "a write")
    assert isinstance(throttled, TransientError) and throttled.code == "ThrottlingException"
    refused = as_domain_error(client_error("ValidationException"), "a write")
    assert isinstance(refused, RequestRefused) and refused.code == "ValidationException"
    timed_out = as_transient(ConnectTimeoutError(endpoint_url="https://x"), "a read")
    assert timed_out.code == "ConnectTimeoutError"
    # Only a cancelled transaction is a conflict, whatever another error's message says.
    assert as_conflict(client_error("ConditionalCheckFailedException"), "a write") is None
