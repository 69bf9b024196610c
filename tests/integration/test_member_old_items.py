"""Member items written before the compact layout keep working until rewritten: read, preferences
saved, left, pruned and joined again through the API and the store on moto, each guard holding."""

from __future__ import annotations

from typing import Any

from herald.members.adapters.dynamo_members import claim_key, member_key
from herald.members.rules import Device, Member, subscription_id
from tests.integration.api_events import response_json
from tests.integration.conftest import Api
from tests.integration.test_api import COMMUNITY, bearer, join, seed, web_push
from tests.unit.test_member_item import old_item


def _as_old(api: Api, member: Member) -> None:
    """Write ``member`` over its item in the old layout."""
    api.members().ddb.put_item(TableName=api.members_table, Item=old_item(member))


def _item(api: Api, member_id: str) -> dict[str, Any] | None:
    got = api.members().ddb.get_item(TableName=api.members_table, Key=member_key(COMMUNITY, member_id))
    item: dict[str, Any] | None = got.get("Item")
    return item


def _joined(api: Api, body: dict[str, Any]) -> tuple[Member, str]:
    answer = response_json(join(api, body))
    stored = api.members().member(COMMUNITY, answer["member_id"])
    assert stored is not None
    _as_old(api, stored)
    item = _item(api, stored.member_id)
    assert item is not None and "token_hash" in item and "h" not in item
    assert api.members().member(COMMUNITY, stored.member_id) == stored
    return stored, answer["token"]


def test_an_old_item_saves_preferences_and_leaves(api: Api) -> None:
    seed(api)
    member, token = _joined(api, {"web_push": web_push(1), "languages": ["fr"]})
    path = f"/communities/{COMMUNITY}/members/{member.member_id}"
    answer = api.call("PATCH", path, body={"muted": True, "topics": ["health"]}, headers=bearer(token))
    assert answer["statusCode"] == 200, answer
    stored = api.members().member(COMMUNITY, member.member_id)
    assert stored is not None
    assert stored.preferences.model_dump() == {
        "languages": ["fr"],
        "topics": ["health"],
        "muted": True,
        "quiet_hours": None,
    }
    assert (
        stored.model_copy(update={"preferences": member.preferences, "updated_at": member.updated_at})
        == member
    )
    assert api.call("DELETE", path, headers=bearer("not-the-token"))["statusCode"] == 403
    assert api.call("DELETE", path, headers=bearer(token))["statusCode"] == 204
    assert _item(api, member.member_id) is None
    claim = api.members().ddb.get_item(
        TableName=api.members_table, Key=claim_key(COMMUNITY, member.subscriptions[0])
    )
    assert "Item" not in claim


def test_an_old_item_is_pruned_subscription_by_subscription(api: Api) -> None:
    seed(api)
    device = Device(platform="fcm", token="fv3jabydF5c:APA91b" + "d" * 40)
    store = api.members()
    answer = response_json(join(api, {"web_push": web_push(2)}))
    joined = store.member(COMMUNITY, answer["member_id"])
    assert joined is not None
    both = joined.model_copy(
        update={
            "device": device,
            "endpoint_arn": "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/herald/1",
            "subscriptions": [*joined.subscriptions, subscription_id(device=device)],
        }
    )
    _as_old(api, both)
    assert store.prune_subscription(COMMUNITY, both.member_id, subscription_id(device=device))
    left = store.member(COMMUNITY, both.member_id)
    assert left == joined.model_copy(update={"subscriptions": joined.subscriptions})
    assert store.prune_subscription(COMMUNITY, both.member_id, joined.subscriptions[0])
    assert _item(api, both.member_id) is None  # its last subscription: the member went with it


def test_a_repeat_join_rewrites_an_old_item_in_the_new_layout(api: Api) -> None:
    seed(api)
    member, token = _joined(api, {"web_push": web_push(3)})
    again = join(api, {"web_push": web_push(3), "topics": ["education"]}, token=token)
    assert again["statusCode"] == 200, again
    item = _item(api, member.member_id)
    assert item is not None and "h" in item and "token_hash" not in item and "preferences" not in item
    stored = api.members().member(COMMUNITY, member.member_id)
    assert stored is not None and stored.preferences.topics == ["education"]
    assert (stored.shard, stored.joined_at, stored.web_push) == (
        member.shard,
        member.joined_at,
        member.web_push,
    )
