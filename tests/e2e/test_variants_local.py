"""Language variants end to end on the local cloud: members join through the API with subscriptions
of the loopback push service, an editor uploads an English notice that names its coming French and
Arabic translations, then the translations, through S3; every function runs in its own worker,
fed by the template's event sources. Each member gets exactly one push, decrypted by the push
service, in the first language of their list the post has (else the original); a member whose
languages the post has none of gets nothing; the variant pages are on the site bucket."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import html5lib
import pytest

from herald.content.models import OutcomeStatus
from herald_tools.localcloud import LocalCloud
from tests.e2e.settle import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "harbour"
pytestmark = pytest.mark.e2e

NOTICE = {
    "en": ("Clinic open on Saturday", "The clinic opens at nine on Saturday, and it is free for everyone."),
    "fr": (
        "Clinique ouverte samedi",
        "La clinique ouvre à neuf heures samedi, et elle est gratuite pour tous.",
    ),
    "ar": ("العيادة مفتوحة يوم السبت", "تفتح العيادة في الساعة التاسعة يوم السبت، وهي مجانية للجميع."),
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    template = ROOT / "template.yaml"
    with LocalCloud(template, project_root=ROOT, logs=io.StringIO()).start(port=0, api_port=0) as running:
        yield running


def _join(cloud: LocalCloud, languages: list[str]) -> str:
    """A member joins through the API with a new subscription of the push service: its id there."""
    assert cloud.api_url and cloud.push_service is not None
    subscription = cloud.push_service.new_subscription(cloud.vapid_public_key)
    request = urllib.request.Request(
        f"{cloud.api_url}/communities/{COMMUNITY}/members",
        data=json.dumps({"web_push": subscription, "languages": languages}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.read()
    return str(cloud.push_service.subscription_id(subscription))


def _markdown(language: str, **front: str) -> bytes:
    title, text = NOTICE[language]
    lines = [f"title: {title}", *(f"{k}: {v}" for k, v in front.items())]
    return ("---\n" + "\n".join(lines) + f"\n---\n{text}\n").encode()


def test_each_member_gets_one_push_in_their_language(cloud: LocalCloud) -> None:
    from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger
    from herald.ingest.adapters.dynamo_content import DynamoContentStore

    push = cloud.push_service
    assert push is not None
    functions = cloud.resources.functions
    content = DynamoContentStore(
        str(functions["IngestFunction"].environment["CONTENT_TABLE"]), cloud.client("dynamodb")
    )
    publisher_env = functions["PublisherFunction"].environment
    site_url, schedule_queue = str(publisher_env["PUBLIC_SITE_URL"]), str(publisher_env["SCHEDULE_QUEUE_URL"])
    s3 = cloud.client("s3")
    uploads, site = cloud.ready_info()["uploads_bucket"], str(cloud.outputs["SiteBucketName"])

    # The community exists (its first post, pushed to nobody: nobody has joined yet).
    s3.put_object(
        Bucket=uploads, Key=f"posts/{COMMUNITY}/welcome.txt", Body=b"Welcome to the harbour channel."
    )
    cloud.wait_until_idle(timeout=120)
    lists: dict[str, list[str]] = {"any": [], "fr": ["fr"], "ar-fr": ["ar", "fr"], "de": ["de"], "es": ["es"]}
    members = {name: _join(cloud, languages) for name, languages in lists.items()}
    cloud.wait_until_idle(timeout=60)
    assert push.received() == []

    def outcome(name: str) -> Any:
        found = content.outcome(f"posts/{COMMUNITY}/{name}")
        return found if found is not None and found.status != OutcomeStatus.WAITING else None

    notice = _markdown("en", translations="[fr, ar]", translation_window="10m")
    s3.put_object(Bucket=uploads, Key=f"posts/{COMMUNITY}/notice.md", Body=notice)
    original = wait_for("the notice's outcome", lambda: outcome("notice.md"), cloud)
    assert original.status == OutcomeStatus.PUBLISHED, original
    [post_id] = original.post_ids
    stored = content.posts(COMMUNITY, [post_id])[post_id]
    assert (stored.language, stored.translations, stored.translation_window_s) == ("en", ["fr", "ar"], 600)

    def settled() -> bool:
        """Nothing is left to do but the translation window's wake-up, delayed on the publisher's
        schedule queue (when it comes, it finds the push started, or starts it)."""
        return not [r for r in cloud.busy() if not r.startswith(f"{schedule_queue}: 0 visible, 0 in flight")]

    for lang in ("fr", "ar"):
        s3.put_object(Bucket=uploads, Key=f"posts/{COMMUNITY}/notice.{lang}.md", Body=_markdown(lang))
        variant = wait_for(
            f"the {lang} variant's outcome", lambda lang=lang: outcome(f"notice.{lang}.md"), cloud
        )
        assert (variant.status, variant.variant, variant.post_ids) == (
            OutcomeStatus.PUBLISHED,
            lang,
            [post_id],
        )
        if lang == "fr":
            wait_for("the French variant's publication", settled, cloud)
            assert push.received() == []  # the post waits for its Arabic translation

    wait_for("the fan-out", lambda: len(push.received()) >= 3 and settled(), cloud)
    received = {name: [d.json for d in push.received(sid)] for name, sid in members.items()}
    assert received["de"] == [] and received["es"] == []  # the post is in en, fr and ar only
    expected = {"any": "en", "fr": "fr", "ar-fr": "ar"}
    for name, lang in expected.items():
        [payload] = received[name]
        title, text = NOTICE[lang]
        page = (
            f"{site_url}/{COMMUNITY}/posts/{post_id}/"
            if lang == "en"
            else f"{site_url}/{COMMUNITY}/{lang}/posts/{post_id}/"
        )
        assert (payload["lang"], payload["title"], payload["url"]) == (lang, title, page), name
        assert payload["post_id"] == post_id and payload["tag"] == f"post-{post_id}"
        assert payload["body"] and payload["body"] in text, (name, payload["body"])
    assert {d.headers.get("Topic") for d in push.received()} == {post_id}
    assert push.duplicates() == {}
    ledger = DynamoDeliveryLedger(
        str(functions["PushSenderFunction"].environment["DELIVERIES_TABLE"]), cloud.client("dynamodb")
    )
    stats = ledger.stats(COMMUNITY, post_id)
    assert stats is not None and (stats["targeted"], stats["sent"], stats["failed"]) == (3, 3, 0), stats

    # The variant pages are on the site, in their language and direction.
    for lang, direction in (("fr", "ltr"), ("ar", "rtl")):
        body = s3.get_object(Bucket=site, Key=f"{COMMUNITY}/{lang}/posts/{post_id}/index.html")["Body"].read()
        html = html5lib.parse(body, treebuilder="etree", namespaceHTMLElements=False)
        assert (html.get("lang"), html.get("dir")) == (lang, direction)
        assert NOTICE[lang][0] in body.decode()
        hreflang = {el.get("hreflang") for el in html.iter("link") if el.get("rel") == "alternate"}
        assert {"en", "fr", "ar", "x-default"} <= hreflang
