"""Language variants published from the content table's real stream records (moto).

Until the ingest writes them, the test writes what the contract says it will: the variant's own
item (``VAR#<post id>#<lang>``) and the post item's ``variants`` map, in one transaction, so the
post item's MODIFY record is what the publisher sees.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import html5lib
import pytest

from herald.content.models import Variant, VariantOrigin
from tests.integration.conftest import REGION
from tests.integration.test_publisher import PREFIX, Site, _sample
from tests.integration.test_publisher import site as site

T1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _variant(post_id: str, lang: str, title: str, *, machine: bool = False) -> Variant:
    return Variant(
        post_id=post_id,
        community="harbour-line",
        lang=lang,
        key=f"posts/harbour-line/welcome.{lang}.md",
        origin=VariantOrigin.MACHINE if machine else VariantOrigin.HUMAN,
        format="md",
        title=title,
        text=f"# {title}\n\nTexte <script>alert(1)</script> en {lang}.",
        excerpt=f"{title}: texte en {lang}.",
        language=lang,
        content_hash=f"{abs(hash((post_id, lang, title))):064x}"[:64],
        created_at=T1,
        updated_at=T1,
    )


def write_variants(site: Site, post_id: str, put: list[Variant], remove: tuple[str, ...] = ()) -> None:
    """One transaction, as the ingest writes a variant: its item, and the post's ``variants`` map."""
    from herald.core.aws import to_item

    ddb = boto3.client("dynamodb", region_name=REGION)
    table = site.stack.table
    key = {"pk": {"S": "C#harbour-line"}, "sk": {"S": f"POST#{post_id}"}}
    post = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    from herald.core.aws import from_item

    summaries = dict(from_item(post).get("variants") or {})
    for lang in remove:
        summaries.pop(lang, None)
    for v in put:
        summaries[v.lang] = v.summary().model_dump(mode="json")
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table,
                "Item": to_item(
                    {
                        **v.model_dump(mode="json", exclude_none=True),
                        "pk": "C#harbour-line",
                        "sk": f"VAR#{post_id}#{v.lang}",
                        "type": "variant",
                    }
                ),
            }
        }
        for v in put
    ]
    items += [
        {
            "Delete": {
                "TableName": table,
                "Key": {"pk": {"S": "C#harbour-line"}, "sk": {"S": f"VAR#{post_id}#{lang}"}},
            }
        }
        for lang in remove
    ]
    items.append(
        {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET variants = :v",
                "ExpressionAttributeValues": {":v": to_item({"v": summaries})["v"]},
            }
        }
    )
    ddb.transact_write_items(TransactItems=items)


def _html(site: Site, path: str) -> Any:
    return html5lib.parse(site.read(path), treebuilder="etree", namespaceHTMLElements=False)


@pytest.mark.usefixtures("site")
def test_variants_come_and_go_on_the_site(site: Site) -> None:
    assert site.publish(site.upload("welcome.md", _sample("welcome.md"))) == {"batchItemFailures": []}
    pid = site.post_id("welcome.md")
    assert f"posts/{pid}/index.html" in site.paths()
    assert not [p for p in site.paths() if p.startswith(("fr/", "ar/"))]
    assert 'rel="alternate" hreflang' not in site.read(f"posts/{pid}/index.html")

    write_variants(site, pid, [_variant(pid, "fr", "Bienvenue"), _variant(pid, "ar", "أهلاً", machine=True)])
    assert site.publish() == {"batchItemFailures": []}
    paths = site.paths()
    assert {
        f"fr/posts/{pid}/index.html",
        f"ar/posts/{pid}/index.html",
        "fr/index.html",
        "ar/feed.atom",
    } <= paths
    assert f"posts/{pid}/index.html" in site.puts  # the original's page gains its switcher
    ar = _html(site, f"ar/posts/{pid}/index.html")
    assert (ar.get("lang"), ar.get("dir")) == ("ar", "rtl")
    assert "ترجمة آلية" in site.read(f"ar/posts/{pid}/index.html")
    assert "<script>alert" not in site.read(f"fr/posts/{pid}/index.html")
    head = site.head(f"fr/posts/{pid}/index.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    hreflang = {
        el.get("hreflang"): el.get("href")
        for el in _html(site, f"posts/{pid}/index.html").iter("link")
        if el.get("hreflang")
    }
    assert hreflang["fr"] == f"https://site.example/{PREFIX}fr/posts/{pid}/"
    assert hreflang["x-default"] == f"https://site.example/{PREFIX}posts/{pid}/"

    # The same records again: the same bytes, nothing written.
    write_variants(site, pid, [])  # a MODIFY that changes nothing the site shows
    assert site.publish() == {"batchItemFailures": []}
    assert site.puts == []

    # The community's default language (its settings on the PROFILE item): the root lists the
    # French variant.
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=site.stack.table,
        Key={"pk": {"S": "C#harbour-line"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET settings = :s",
        ExpressionAttributeValues={":s": {"M": {"default_language": {"S": "fr"}}}},
    )
    assert site.publish() == {"batchItemFailures": []}
    root = _html(site, "index.html")
    assert root.get("lang") == "fr"
    assert "Bienvenue" in site.read("index.html")
    assert f"posts/{pid}/index.html" not in site.puts  # the original's page is the original

    # The French variant deleted: its page goes; the folder's pages stay until a full render.
    write_variants(site, pid, [], remove=("fr",))
    assert site.publish() == {"batchItemFailures": []}
    paths = site.paths()
    assert f"fr/posts/{pid}/index.html" not in paths
    assert f"ar/posts/{pid}/index.html" in paths
    # The folder is known from the bucket's listing (no post read has a French variant now): its
    # community page is written again, listing the post in its original.
    assert "fr/index.html" in site.puts
    assert f"fr/posts/{pid}/" not in site.read("fr/index.html")
    assert "fr" not in {el.get("hreflang") for el in _html(site, f"ar/posts/{pid}/index.html").iter("link")}

    # A full render (herald republish) reads every variant with one Query and drops the folder
    # no post has a variant in any more.
    from tests.integration.conftest import LambdaContext

    answer = site.handler.handler({"v": 1, "kind": "republish", "community": "harbour-line"}, LambdaContext())
    assert answer["mode"] == "full"
    paths = site.paths()
    assert not [p for p in paths if p.startswith("fr/")]
    assert {f"ar/posts/{pid}/index.html", "ar/index.html", "ar/feed.json"} <= paths
    assert "أهلاً" in site.read(f"ar/posts/{pid}/index.html")

    # The original deleted: every page of the post goes.
    site.stack.delete("posts/harbour-line/welcome.md")
    site.stack.drain()
    assert site.publish() == {"batchItemFailures": []}
    assert not [p for p in site.paths() if pid in p]


def test_a_default_language_upload_renders_the_root_archive_pages_in_it(site: Site) -> None:
    """``communities/<c>.json`` naming a default language, uploaded through S3 and ingested: the
    profile's stream record carries ``settings``, so the whole site is rendered, and the root's
    archive pages, not only its community page and feeds, list each post in its Arabic variant,
    with ``<html lang="ar" dir="rtl">``."""
    site.stack.put("posts/harbour-line/ferry.txt", "The ferry to the island leaves at 9:00 from pier 3.")
    site.stack.put("posts/harbour-line/market.txt", "The fish market opens on the quay on Saturday at six.")
    site.stack.drain()
    site.stack.put(
        "posts/harbour-line/ferry.ar.txt", "تغادر العبّارة إلى الجزيرة في التاسعة من الرصيف الثالث."
    )
    site.stack.drain()
    assert site.stack.outcome("posts/harbour-line/ferry.ar.txt")["status"] == "published"
    assert site.publish() == {"batchItemFailures": []}
    ferry, market = site.post_id("ferry.txt"), site.post_id("market.txt")
    page = _html(site, "page/1/index.html")
    assert page.get("lang") == "en"
    assert f"ar/posts/{ferry}/" not in site.read("page/1/index.html")

    site.stack.put("communities/harbour-line.json", '{"default_language": "ar"}')
    site.stack.drain()
    assert site.stack.outcome("communities/harbour-line.json")["status"] == "published"
    assert site.stack.community("harbour-line")["settings"]["default_language"] == "ar"
    assert site.publish() == {"batchItemFailures": []}

    assert "page/1/index.html" in site.puts
    for path in ("index.html", "page/1/index.html"):
        page = _html(site, path)
        assert (page.get("lang"), page.get("dir")) == ("ar", "rtl"), path
        links = {a.get("href") for a in page.iter("a")}
        root = "" if path == "index.html" else "../../"
        assert f"{root}ar/posts/{ferry}/" in links, path  # the Arabic variant
        assert f"{root}posts/{market}/" in links, path  # no Arabic variant: the original
    assert "تغادر العبّارة" in site.read("page/1/index.html")
    # A post's own page at posts/<id>/ stays its original.
    assert _html(site, f"posts/{ferry}/index.html").get("lang") == "en"
