"""What a join and a leave ask of the members table, counted on the API function's own DynamoDB
client while the handler answers API Gateway's events on moto.

A first join is two conditional puts of items of its own (its subscription's claim, its member),
each under 1 KB, so 3 write units with the member's ``gsi1`` entry; no item is written by two
joins (nothing every join writes) and no join writes a counter. A leave is two deletes (the
member, guarded by its token hash and answering with what it held; then its claim) and no read:
the least a leave can be. Item sizes are DynamoDB's
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from herald_tools.bench.fanout_scale import item_bytes
from tests.integration.api_events import response_json
from tests.integration.conftest import Api
from tests.integration.test_api import COMMUNITY, bearer, join, seed, web_push

#: A Chrome subscription's endpoint: FCM's send URL and a registration token of 152 characters.
FCM_TOKEN = "fv3jabydF5c:APA91b" + "x" * 134
TOPICS = ["health", "displacement", "education", "safety-scams", "registration-documents"]


#: A Firefox subscription's endpoint (Mozilla autopush v2) of 600 characters, longer than any push
#: service's: the member item stays under 1 KB with it.
MOZILLA_PREFIX = "https://updates.push.services.mozilla.com/wpush/v2/"


def chrome_subscription(n: int) -> dict[str, Any]:
    subscription = web_push(n)
    subscription["endpoint"] = f"https://fcm.googleapis.com/fcm/send/{FCM_TOKEN[: -len(str(n))]}{n}"
    return subscription


def firefox_subscription(n: int) -> dict[str, Any]:
    subscription = web_push(n)
    token = ("gAAAAABnT" * 70)[: 600 - len(MOZILLA_PREFIX) - 4] + f"{n:04d}"
    subscription["endpoint"] = MOZILLA_PREFIX + token
    assert len(subscription["endpoint"]) == 600
    return subscription


@contextmanager
def members_table_calls(api: Api) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every call the API function's DynamoDB client makes on the members table, as sent."""
    from herald.core import aws

    calls: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == api.members_table:
            calls.append((model.name, params))

    client = aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", record)


def write_units(item: dict[str, Any]) -> int:
    """Write units of putting ``item`` (wire form) outside a transaction: 1 per KB or part."""
    return -(-item_bytes(item) // 1024)


@pytest.mark.parametrize(
    ("subscription", "preferences"),
    [
        (chrome_subscription, {}),
        (firefox_subscription, {"languages": ["uk", "en", "pl"], "topics": TOPICS}),
    ],
    ids=["chrome", "firefox-600-characters-with-preferences"],
)
def test_a_join_is_two_conditional_puts_of_its_own_items_3_write_units(
    api: Api, subscription: Callable[[int], dict[str, Any]], preferences: dict[str, Any]
) -> None:
    seed(api)
    assert join(api, {"web_push": subscription(0)})["statusCode"] == 201  # the community read
    with members_table_calls(api) as calls:
        answers = [join(api, {"web_push": subscription(n), **preferences}) for n in range(1, 41)]
    assert [a["statusCode"] for a in answers] == [201] * 40
    assert [name for name, _ in calls] == ["PutItem", "PutItem"] * 40
    keys: list[str] = []
    units = 0
    for (_, claim), (_, member) in zip(calls[::2], calls[1::2], strict=True):
        assert claim["Item"]["pk"]["S"].startswith(f"S#{COMMUNITY}#")
        assert member["Item"]["pk"]["S"].startswith(f"M#{COMMUNITY}#")
        for params in (claim, member):
            assert params["ConditionExpression"] == "attribute_not_exists(pk)"
            keys.append(params["Item"]["pk"]["S"])
        # The claim, the member and the member's gsi1 entry (the index projects the whole item).
        units += write_units(claim["Item"]) + 2 * write_units(member["Item"])
    assert units == 3 * 40
    assert len(set(keys)) == len(keys)  # no item two joins write, so none that every join writes


def test_a_leave_is_two_deletes_and_no_read(api: Api) -> None:
    seed(api)
    members = [response_json(join(api, {"web_push": chrome_subscription(n)})) for n in range(10)]
    with members_table_calls(api) as calls:
        for member in members:
            path = f"/communities/{COMMUNITY}/members/{member['member_id']}"
            assert api.call("DELETE", path, headers=bearer(member["token"]))["statusCode"] == 204
    assert [name for name, _ in calls] == ["DeleteItem", "DeleteItem"] * 10
    for (_, member_delete), (_, claim_delete) in zip(calls[::2], calls[1::2], strict=True):
        assert member_delete["Key"]["pk"]["S"].startswith(f"M#{COMMUNITY}#")
        assert "h = :h" in member_delete["ConditionExpression"]
        assert claim_delete["Key"]["pk"]["S"].startswith(f"S#{COMMUNITY}#")
    # Left already (a retry, a second tab): one guarded delete that finds nothing, nothing else.
    again = members[0]
    with members_table_calls(api) as calls:
        path = f"/communities/{COMMUNITY}/members/{again['member_id']}"
        assert api.call("DELETE", path, headers=bearer(again["token"]))["statusCode"] == 204
    assert [name for name, _ in calls] == ["DeleteItem"]
    # The claims went with their members: the same subscriptions join again as new members.
    assert join(api, {"web_push": chrome_subscription(0)})["statusCode"] == 201
