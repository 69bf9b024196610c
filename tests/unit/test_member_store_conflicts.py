"""The member store tells a lost race from any other failed write by the error code of each write
(``ConcurrentUpdate.reasons``: the member's, then each claim's), never by the text of a message: a
leave whose member's own guard failed has been left already. Claims left over by a write that
stopped half way are released; the counter adds each stream batch's change once.

botocore's Stubber answers the client: no AWS, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from herald.core.aws import as_conflict, as_domain_error, as_transient
from herald.core.errors import ConcurrentUpdate, RequestRefused, TransientError
from herald.members.adapters.dynamo_members import CLAIM_GRACE_S, DynamoMemberStore, member_item
from herald.members.counting import Step, Tally
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
        yield DynamoMemberStore("members", dynamodb=client, clock=lambda: NOW), stubber


NOW = 1_800_000_000.0
CLAIM = subscription_id(device=DEVICE)


def _stored(stubber: Stubber) -> None:
    stubber.add_response("get_item", {"Item": member_item(MEMBER)})


def _failed(stubber: Stubber, operation: str, code: str = "ConditionalCheckFailedException") -> None:
    stubber.add_client_error(operation, service_error_code=code, service_message=code, http_status_code=400)


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
    _failed(stubber, "delete_item")  # the member's guard (its token hash): gone, or never this token's
    assert store.remove(COMMUNITY, MEMBER.member_id, MEMBER.token_hash) is None
    stubber.assert_no_pending_responses()


def test_a_leave_whose_claim_is_not_released_is_still_a_leave(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_response("delete_item", {"Attributes": member_item(MEMBER)})  # the member, as it was
    _failed(stubber, "delete_item", "ThrottlingException")  # its claim: left over, released later
    assert store.remove(COMMUNITY, MEMBER.member_id, MEMBER.token_hash) == MEMBER
    stubber.assert_no_pending_responses()


def test_a_throttled_claim_is_not_a_lost_race(stubbed: tuple[DynamoMemberStore, Stubber]) -> None:
    store, stubber = stubbed
    _failed(stubber, "put_item", "ThrottlingException")
    with pytest.raises(TransientError) as raised:
        store.create(MEMBER)
    assert not isinstance(raised.value, ConcurrentUpdate)
    assert raised.value.code == "ThrottlingException"
    stubber.assert_no_pending_responses()


def test_a_join_that_lost_a_race_carries_each_items_reason(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    _failed(stubber, "put_item")  # the claim is taken: nothing else is written
    with pytest.raises(ConcurrentUpdate) as raised:
        store.create(MEMBER)
    assert raised.value.reasons == ("None", "ConditionalCheckFailed")  # the member, its claim
    assert raised.value.guard_failed(1) and not raised.value.guard_failed(0)
    assert not raised.value.guard_failed(3) and not raised.value.guard_failed(-1)
    stubber.assert_no_pending_responses()


def test_a_member_that_cannot_be_put_releases_its_claim(stubbed: tuple[DynamoMemberStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("put_item", {})  # the claim
    _failed(stubber, "put_item", "ProvisionedThroughputExceededException")  # the member
    stubber.add_response(
        "delete_item",
        {},
        {
            "TableName": "members",
            "Key": {"pk": {"S": f"S#{COMMUNITY}#{CLAIM}"}, "sk": {"S": "CLAIM"}},
            "ConditionExpression": "attribute_not_exists(pk) OR member_id = :m",
            "ExpressionAttributeValues": {":m": {"S": MEMBER.member_id}},
        },
    )
    with pytest.raises(TransientError):
        store.create(MEMBER)
    stubber.assert_no_pending_responses()


def _claim(claimed_at: float) -> dict[str, Any]:
    return {
        "Item": {
            "pk": {"S": f"S#{COMMUNITY}#{CLAIM}"},
            "sk": {"S": "CLAIM"},
            "member_id": {"S": MEMBER.member_id},
            "claimed_at": {"N": str(int(claimed_at))},
        }
    }


def test_a_young_claim_without_its_member_is_a_join_on_its_way(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_response("get_item", _claim(NOW - CLAIM_GRACE_S + 5))
    assert store.claims(COMMUNITY, [CLAIM]) == {CLAIM: MEMBER.member_id}  # nothing else read
    stubber.assert_no_pending_responses()


def test_an_old_claim_whose_member_is_gone_is_released(stubbed: tuple[DynamoMemberStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("get_item", _claim(NOW - CLAIM_GRACE_S - 1))
    stubber.add_response("get_item", {})  # its member: gone (a crash between the two writes)
    stubber.add_response("delete_item", {})
    assert store.claims(COMMUNITY, [CLAIM]) == {}
    # An old claim whose member holds it stays.
    stubber.add_response("get_item", _claim(NOW - 3600))
    _stored(stubber)
    assert store.claims(COMMUNITY, [CLAIM]) == {CLAIM: MEMBER.member_id}
    stubber.assert_no_pending_responses()


def test_a_batch_counted_before_adds_only_what_came_after(
    stubbed: tuple[DynamoMemberStore, Stubber],
) -> None:
    store, stubber = stubbed
    steps = [Step("e1", +1), Step("e2", +1), Step("e3", -1), Step("e4", +1)]
    # The marker of e1 exists: a delivery counted up to e2 before (a batch that grew since).
    _cancelled(stubber, ["ConditionalCheckFailed", "None"])
    stubber.add_response(
        "get_item", {"Item": {"pk": {"S": "L"}, "sk": {"S": "APPLIED"}, "last": {"S": "e2"}}}
    )
    # e3 and e4 add 0: nothing is written for them. Another batch: e5, then a conflict, then written.
    assert store.add_counts(Tally(steps={(COMMUNITY, 3): steps})) == 0
    _cancelled(stubber, ["None", "TransactionConflict"])
    stubber.add_response("transact_write_items", {})
    assert store.add_counts(Tally(steps={(COMMUNITY, 3): [Step("e5", +1)]})) == 1
    stubber.assert_no_pending_responses()


def test_a_part_of_a_batch_counted_before_adds_nothing(stubbed: tuple[DynamoMemberStore, Stubber]) -> None:
    store, stubber = stubbed
    _cancelled(stubber, ["ConditionalCheckFailed", "None"])
    stubber.add_response(
        "get_item", {"Item": {"pk": {"S": "L"}, "sk": {"S": "APPLIED"}, "last": {"S": "e9"}}}
    )
    assert store.add_counts(Tally(steps={(COMMUNITY, 3): [Step("e1", +1), Step("e2", +1)]})) == 0
    stubber.assert_no_pending_responses()


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
