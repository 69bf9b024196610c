"""The content store tells a lost race from any other failed write by the cancellation reason of
each item of the transaction, which the raised ConcurrentUpdate carries, never by a message.

botocore's Stubber answers the client: no AWS, no sockets."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from herald.core.errors import ConcurrentUpdate, TransientError
from herald.ingest.adapters.dynamo_content import DynamoContentStore
from herald.ingest.ports import Change, ImportProgress

KEY = "exports/demo/page.txt"


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoContentStore, Stubber]]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield DynamoContentStore("content", client), stubber


def _change() -> Change:
    """Two items: the progress record and the removal of an older one."""
    return Change(progress=(KEY, ImportProgress("0" * 32, runs=1)), clear_progress="exports/demo/old.txt")


def _cancelled(stubber: Stubber, codes: list[str], message: str = "Transaction cancelled") -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message=message,
        http_status_code=400,
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


@pytest.mark.parametrize("reason", ["ConditionalCheckFailed", "TransactionConflict"])
def test_a_failed_guard_is_a_concurrent_update_with_each_items_reason(
    stubbed: tuple[DynamoContentStore, Stubber], reason: str
) -> None:
    store, stubber = stubbed
    _cancelled(stubber, ["None", reason])
    with pytest.raises(ConcurrentUpdate) as raised:
        store.commit(_change())
    assert raised.value.reasons == ("None", reason)


def test_a_cancellation_for_another_reason_is_not_a_lost_race(
    stubbed: tuple[DynamoContentStore, Stubber],
) -> None:
    store, stubber = stubbed
    # The message names a guard, the reasons do not: the reasons decide.
    _cancelled(stubber, ["ThrottlingError", "None"], message="ConditionalCheckFailed, TransactionConflict")
    with pytest.raises(TransientError) as raised:
        store.commit(_change())
    assert not isinstance(raised.value, ConcurrentUpdate)


def test_a_write_that_goes_through_raises_nothing(stubbed: tuple[DynamoContentStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("transact_write_items", {})
    store.commit(_change())
    stubber.assert_no_pending_responses()
