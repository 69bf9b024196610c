"""One definition per rule: the settings base, the community id, the member count and its display,
the site's and the API's URLs, the join QR code, SQS's delay limit and the post field lists, each
defined once and used by every feature that needs it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from herald.api.app import PostOut
from herald.api.settings import ApiSettings
from herald.content import qr, urls
from herald.content.counts import compact_number, exact_number, member_count
from herald.content.ids import COMMUNITY_ID_PATTERN, MAX_COMMUNITY_ID_CHARS, is_community_id
from herald.content.limits import SQS_MAX_DELAY_S
from herald.content.models import PUBLIC_POST_FIELDS, REPORTED_POST_FIELDS, Enrichment, Outcome, Post
from herald.core.observability import tracing_enabled
from herald.core.settings import Settings
from herald.fanout import rules as fanout_rules
from herald.fanout.adapters.sqs_jobs import SqsJobQueue
from herald.fanout.settings import PlannerSettings, SenderSettings
from herald.ingest.layout import parse_key
from herald.ingest.settings import IngestSettings
from herald.members.endpoints import EndpointPolicy, EndpointSettings
from herald.members.rules import JoinRequest, Preferences
from herald.site.publisher import PublisherSettings
from tests.members import p256_point

API_ENV = {"CONTENT_TABLE": "c", "MEMBERS_TABLE": "m", "MEMBER_TOKEN_SECRET_ARN": "arn:secret"}
PLANNER_ENV = {
    "CONTENT_TABLE": "c",
    "MEMBERS_TABLE": "m",
    "DELIVERIES_TABLE": "d",
    "PLANNER_QUEUE_URL": "https://sqs/planner",
    "PUSH_JOB_QUEUE_URL": "https://sqs/push",
}
SENDER_ENV = {
    "MEMBERS_TABLE": "m",
    "DELIVERIES_TABLE": "d",
    "PUSH_JOB_QUEUE_URL": "https://sqs/push",
    "VAPID_KEY_PARAMETER": "/herald/vapid",
}
PUBLISHER_ENV = {"CONTENT_TABLE": "c", "SITE_BUCKET": "site"}


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "cls", [IngestSettings, PlannerSettings, SenderSettings, ApiSettings, PublisherSettings]
)
def test_every_functions_settings_derive_from_the_one_base(cls: type[Settings]) -> None:
    assert issubclass(cls, Settings)
    assert "from_env" not in vars(cls)  # the base's reading, not one of its own


def test_a_field_is_read_from_its_upper_case_variable_and_unset_keeps_the_default() -> None:
    settings = PlannerSettings.from_env({**PLANNER_ENV, "MEMBERS_PER_JOB": "50", "members_table": "x"})
    assert settings.members_per_job == 50 and settings.members_table == "m"
    assert settings.public_site_url == "https://herald.example"
    assert settings.max_delay_seconds == SQS_MAX_DELAY_S
    with pytest.raises(ValidationError, match="content_table"):
        PlannerSettings.from_env({k: v for k, v in PLANNER_ENV.items() if k != "CONTENT_TABLE"})
    with pytest.raises(ValidationError):
        PlannerSettings.from_env({**PLANNER_ENV, "MAX_DELAY_SECONDS": str(SQS_MAX_DELAY_S + 1)})
    with pytest.raises(ValidationError):  # frozen
        settings.members_per_job = 1  # type: ignore[misc]


def test_an_empty_variable_is_unset_for_the_publisher_only() -> None:
    publisher = PublisherSettings.from_env({**PUBLISHER_ENV, "API_URL": "", "MEMBER_COUNTER_SHARDS": ""})
    assert publisher.api_url is None and publisher.member_counter_shards == 32
    ingest = IngestSettings.from_env({"CONTENT_TABLE": "c", "UPLOADS_BUCKET": ""})
    assert ingest.uploads_bucket == ""


def test_the_process_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in API_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PUBLIC_SITE_URL", "https://site.example/")
    assert ApiSettings.from_env().site_url == "https://site.example"
    monkeypatch.setenv("HERALD_TRACING", " Active ")
    assert tracing_enabled()
    monkeypatch.setenv("HERALD_TRACING", "off")
    assert not tracing_enabled()
    assert tracing_enabled({"HERALD_TRACING": "active"}) and not tracing_enabled({})


@pytest.mark.parametrize("cls", [ApiSettings, SenderSettings])
def test_the_api_and_the_sender_read_the_endpoint_policy_alike(cls: type[EndpointSettings]) -> None:
    env = API_ENV if cls is ApiSettings else SENDER_ENV
    assert cls.from_env(env).endpoint_policy == EndpointPolicy()
    for on in ("true", "1", "yes", "on", " TRUE "):
        assert cls.from_env({**env, "ALLOW_LOOPBACK_PUSH": on}).endpoint_policy.allow_loopback
    for off in ("false", "0", "", "nonsense"):
        assert not cls.from_env({**env, "ALLOW_LOOPBACK_PUSH": off}).endpoint_policy.allow_loopback
    ports = cls.from_env({**env, "PUSH_ALLOWED_PORTS": "443, 8443"}).endpoint_policy.allowed_ports
    assert ports == frozenset({443, 8443})
    for bad in ("https", "0", "70000", ","):
        with pytest.raises(ValueError, match="PUSH_ALLOWED_PORTS"):
            cls.from_env({**env, "PUSH_ALLOWED_PORTS": bad})


# ----------------------------------------------------------------------------- the community id


def test_the_community_id_is_the_upload_layouts() -> None:
    for good in ("a", "safe-routes", "r2", "a" * MAX_COMMUNITY_ID_CHARS):
        assert is_community_id(good)
        assert parse_key(f"posts/{good}/p.txt").community == good
    for bad in ("", "Safe", "safe.routes", "safe_routes", "-a", "a-", "a" * 65, "a\n", None, 7):
        assert not is_community_id(bad)
    assert re.fullmatch(COMMUNITY_ID_PATTERN, "safe-routes")


# ----------------------------------------------------------------------------- the member count


def test_the_member_count_and_its_display() -> None:
    assert member_count(222_000, 3) == 222_003
    assert member_count(222_000, [1, 2, -1]) == 222_002  # the counter shards' values
    assert member_count(2, -5) == 0  # more leaves than the baseline knew of: never below 0
    assert compact_number(222_003, "en") == "222K"
    assert exact_number(222_003, "en") == "222,003"
    assert exact_number(222_003, "fr") == "222\u202f003"


# ----------------------------------------------------------------------------- URLs


def test_site_and_api_urls_are_built_in_one_place() -> None:
    site = "https://site.example/herald/"
    assert urls.site_root(site) == "https://site.example/herald"
    assert urls.site_origin(site) == "https://site.example"
    assert urls.community_url(site, "safe-routes") == "https://site.example/herald/safe-routes/"
    assert urls.post_url(site, "safe-routes", "ab12") == "https://site.example/herald/safe-routes/posts/ab12/"
    assert urls.join_url(site, "safe-routes") == "https://site.example/herald/safe-routes/join"
    assert urls.post_url(site, "a b", "x/y") == "https://site.example/herald/a%20b/posts/x%2Fy/"
    api = "https://api.example/dev/"
    assert urls.community_api_url(api, "safe-routes") == "https://api.example/dev/communities/safe-routes"
    assert (
        urls.members_api_url(api, "safe-routes") == "https://api.example/dev/communities/safe-routes/members"
    )
    # Every feature's URL is that one.
    assert fanout_rules.post_url is urls.post_url
    api_settings = ApiSettings.from_env({**API_ENV, "PUBLIC_SITE_URL": site})
    publisher = PublisherSettings.from_env({**PUBLISHER_ENV, "PUBLIC_SITE_URL": site})
    assert (
        api_settings.join_url("safe-routes")
        == publisher.join_url("safe-routes")
        == urls.join_url(site, "safe-routes")
    )
    assert publisher.base_url("safe-routes") == urls.community_url(site, "safe-routes")
    assert api_settings.site_origin == urls.site_origin(site)


# ----------------------------------------------------------------------------- QR codes


def _modules(svg: str) -> str:
    found = re.search(r' d="([^"]+)"', svg)
    assert found is not None
    return found.group(1)


def test_the_api_and_the_site_draw_the_same_code_for_a_link() -> None:
    from herald.site.render import _qr_svg

    link = "https://site.example/safe-routes/join"
    api_svg, site_svg = qr.svg(link, title=link), _qr_svg(link).decode("utf-8")
    assert _modules(api_svg) == _modules(site_svg)
    assert f"<title>{link}</title>" in api_svg and "<title>" not in site_svg
    assert 'class="segno"' in api_svg and "class=" not in site_svg
    assert _modules(qr.svg("https://site.example/other/join")) != _modules(api_svg)
    assert qr.png(link).startswith(b"\x89PNG") and qr.png_data_url(link).startswith("data:image/png;base64,")


# ----------------------------------------------------------------------------- SQS's delay limit


class _Sqs:
    def __init__(self) -> None:
        self.delays: list[int] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.delays += [entry["DelaySeconds"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def test_the_sqs_delay_limit_is_one_number() -> None:
    assert SQS_MAX_DELAY_S == 900
    assert fanout_rules.MAX_DELAY_S == SQS_MAX_DELAY_S
    for cls, env in (
        (PlannerSettings, PLANNER_ENV),
        (SenderSettings, SENDER_ENV),
        (PublisherSettings, PUBLISHER_ENV),
    ):
        assert cls.from_env(env).max_delay_seconds == SQS_MAX_DELAY_S
        with pytest.raises(ValidationError):
            cls.from_env({**env, "MAX_DELAY_SECONDS": str(SQS_MAX_DELAY_S + 1)})
    sqs = _Sqs()
    queue = SqsJobQueue("https://sqs/push", sqs)
    queue.send([{"n": 1}], delay_s=SQS_MAX_DELAY_S * 3)
    queue.send([{"n": 2}], delay_s=-5)
    assert sqs.delays == [SQS_MAX_DELAY_S, 0]


# ----------------------------------------------------------------------------- post fields


def _fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)


def test_the_post_field_lists_derive_from_the_model() -> None:
    from herald_tools.report import POST_FIELDS

    assert set(_fields(Enrichment)) <= set(_fields(Post))  # every enrichment is stored on the post
    assert POST_FIELDS == REPORTED_POST_FIELDS
    assert set(_fields(Post)) - set(REPORTED_POST_FIELDS) == {"position"}
    # The API shows a post's variants as links to them, and which language it answers in.
    shown = tuple(name for name in PUBLIC_POST_FIELDS if name != "variants")
    assert _fields(PostOut) == (*shown, "lang", "machine", "variants", "delivery")
    storage = {"key", "source", "format", "position", "content_hash", "notify", "correlation_id"}
    assert not (storage | {"translations", "translation_window_s"}) & set(PUBLIC_POST_FIELDS)
    for name in shown:
        assert PostOut.model_fields[name].is_required() == Post.model_fields[name].is_required(), name


def test_the_cli_shows_every_field_of_an_outcome() -> None:
    """``herald outcome`` shows the whole record; ``herald report`` all of it but the event's identity."""
    from herald_tools.ops import OUTCOME_FIELDS
    from herald_tools.report import OBJECT_FIELDS

    assert set(OUTCOME_FIELDS) == set(_fields(Outcome))
    assert set(OBJECT_FIELDS) == set(_fields(Outcome)) - {"sequencer", "version_id"}


# ----------------------------------------------------------------------------- preferences


def test_a_join_gives_the_preferences_it_names() -> None:
    web_push = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/x",
        "keys": {"p256dh": p256_point(5), "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    }
    given = JoinRequest.model_validate({"web_push": web_push, "languages": ["fr"], "topics": []})
    assert given.preferences() == {"languages": ["fr"]}
    assert Preferences(**given.preferences()) == Preferences(languages=["fr"])
    assert JoinRequest.model_validate({"web_push": web_push}).preferences() == {}


def test_nothing_but_the_settings_base_reads_the_environment() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("shared", "functions")
        for path in sorted((root / folder).rglob("*.py"))
        if path != root / "shared/herald/core/runtime.py"  # environment(), which Settings reads through
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"os\.environ\b(?!``)|os\.getenv\(|\bgetenv\(", line)
    ]
    assert readers == []
