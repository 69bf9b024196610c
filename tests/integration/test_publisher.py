"""The publisher function driven by the content table's real stream records (moto), as Lambda sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import html5lib
import pytest

from tests.integration.conftest import REGION, LambdaContext, Stack, load_handler

SAMPLES = Path(__file__).resolve().parents[2] / "infra" / "herald_tools" / "samples"
COMMUNITY = "harbour-line"
PREFIX = f"{COMMUNITY}/"


@dataclass
class Site:
    stack: Stack
    s3: Any
    bucket: str
    handler: Any
    streams: Any
    stream_arn: str
    iterators: dict[str, str] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)
    deletes: int = 0

    def stream_event(self) -> dict[str, Any]:
        """The records written since the last call, as Lambda's DynamoDB stream event."""
        from herald_tools.localcloud.event_sources import dynamodb_record

        records: list[dict[str, Any]] = []
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            sid = shard["ShardId"]
            iterator = (
                self.iterators.get(sid)
                or self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            records += response["Records"]
            self.iterators[sid] = response["NextShardIterator"]
        return {"Records": [dynamodb_record(r, self.stream_arn) for r in records]}

    def publish(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.stream_event() if event is None else event
        self.puts.clear()
        self.deletes = 0
        return self.handler.handler(event, LambdaContext())

    def upload(self, name: str, body: str | bytes) -> dict[str, Any]:
        self.stack.put(f"posts/{COMMUNITY}/{name}", body)
        self.stack.drain()
        event = self.stream_event()
        assert event["Records"], "the upload wrote nothing to the table"
        return event

    def paths(self) -> set[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=PREFIX)
        return {o["Key"].removeprefix(PREFIX) for o in response.get("Contents", [])}

    def etags(self) -> dict[str, str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=PREFIX)
        return {o["Key"].removeprefix(PREFIX): o["ETag"] for o in response.get("Contents", [])}

    def head(self, path: str) -> dict[str, Any]:
        return self.s3.head_object(Bucket=self.bucket, Key=PREFIX + path)

    def read(self, path: str) -> str:
        return self.s3.get_object(Bucket=self.bucket, Key=PREFIX + path)["Body"].read().decode()

    def post_id(self, name: str) -> str:
        outcome = self.stack.outcome(f"posts/{COMMUNITY}/{name}")
        return str(outcome["post_ids"][0])


@pytest.fixture
def site(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    from herald.core import aws

    ddb = boto3.client("dynamodb", region_name=REGION)
    stream_arn = ddb.describe_table(TableName=stack.table)["Table"]["LatestStreamArn"]
    s3 = boto3.client("s3", region_name=REGION)
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].endswith("sitebucket"))
    members_table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("MembersTable"))
    env = {
        "CONTENT_TABLE": stack.table,
        "MEMBERS_TABLE": members_table,
        "SITE_BUCKET": bucket,
        "PUBLIC_SITE_URL": "https://site.example",
        "API_URL": "https://api.example/dev",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler = load_handler("publisher")
    handler.configure(None)
    aws.client.cache_clear()
    site = Site(
        stack=stack,
        s3=s3,
        bucket=bucket,
        handler=handler,
        streams=boto3.client("dynamodbstreams", region_name=REGION),
        stream_arn=stream_arn,
    )

    def on_put(params: dict[str, Any], **_: Any) -> None:
        site.puts.append(params["Key"].removeprefix(PREFIX))

    def on_delete(**_: Any) -> None:
        site.deletes += 1

    # The handler's own client: every write it makes is counted.
    aws.client("s3").meta.events.register("provide-client-params.s3.PutObject", on_put)
    aws.client("s3").meta.events.register("provide-client-params.s3.DeleteObjects", on_delete)
    site.stream_event()  # start after what provisioning wrote
    yield site
    handler.configure(None)


def _sample(name: str) -> bytes:
    return (SAMPLES / "posts" / name).read_bytes()


def test_publish_writes_pages_and_feeds_with_their_headers(site: Site) -> None:
    site.upload("welcome.md", _sample("welcome.md"))
    site.upload("clinic-hours.json", _sample("clinic-hours.json"))
    # Both uploads' records in one batch, as the event source would gather them.
    assert site.publish(_merged(site)) == {"batchItemFailures": []}
    welcome, clinic = site.post_id("welcome.md"), site.post_id("clinic-hours.json")
    keys = site.paths()
    assert {
        "index.html",
        "join/index.html",
        "feed.atom",
        "feed.json",
        "qr.svg",
        "site.css",
        "join.js",
        "sw.js",
        f"posts/{welcome}/index.html",
        f"posts/{clinic}/index.html",
    } <= keys
    live = "public, max-age=60, stale-while-revalidate=300"
    expected = {
        "index.html": ("text/html; charset=utf-8", live),
        "feed.atom": ("application/atom+xml; charset=utf-8", live),
        "feed.json": ("application/feed+json; charset=utf-8", live),
        f"posts/{clinic}/index.html": ("text/html; charset=utf-8", "public, max-age=300"),
        "qr.svg": ("image/svg+xml", "public, max-age=86400"),
        "join.js": ("text/javascript; charset=utf-8", "public, max-age=86400"),
    }
    for path, (ctype, cache) in expected.items():
        head = site.head(path)
        assert (head["ContentType"], head["CacheControl"]) == (ctype, cache), path
    index = site.read("index.html")
    assert index.index("Welcome to the new Harbour Line channel") < index.index("mobile clinic in Gaziantep")
    assert 'href="https://bit.ly/HLclinic"' in index
    assert "https://site.example/harbour-line/" in index  # canonical URL on the public site
    assert 'data-api="https://api.example/dev/communities/harbour-line/members"' in index
    feed = json.loads(site.read("feed.json"))
    assert {i["id"] for i in feed["items"]} == {
        f"https://site.example/harbour-line/posts/{clinic}/",
        f"https://site.example/harbour-line/posts/{welcome}/",
    }


def _merged(site: Site) -> dict[str, Any]:
    """Every record not yet published: the stream read again from its start."""
    site.iterators.clear()
    return site.stream_event()


def test_an_edit_rewrites_only_that_post_the_index_and_the_feeds(site: Site) -> None:
    site.publish(site.upload("welcome.md", _sample("welcome.md")))
    site.publish(site.upload("clinic-hours.json", _sample("clinic-hours.json")))
    site.publish(site.upload("aviso.txt", _sample("aviso-estafa.txt")))
    before = site.etags()
    clinic = site.post_id("clinic-hours.json")
    edited = json.loads(_sample("clinic-hours.json"))
    edited["text"] = edited["text"].replace("8:00 to 16:00", "9:00 to 17:00")
    event = site.upload("clinic-hours.json", json.dumps(edited))
    assert site.publish(event) == {"batchItemFailures": []}
    after = site.etags()
    changed = {path for path in after if before.get(path) != after[path]}
    # The archive page holding the post changes too; nothing else does.
    post_page = f"posts/{clinic}/index.html"
    assert changed == {post_page, "index.html", "feed.atom", "feed.json", "page/1/index.html"}
    assert sorted(site.puts) == sorted(changed)
    assert "9:00 to 17:00" in site.read(f"posts/{clinic}/index.html")
    assert set(after) == set(before)


def test_a_delete_removes_the_post_page(site: Site) -> None:
    site.publish(site.upload("welcome.md", _sample("welcome.md")))
    site.publish(site.upload("aviso.txt", _sample("aviso-estafa.txt")))
    aviso = site.post_id("aviso.txt")
    assert f"posts/{aviso}/index.html" in site.paths()
    site.stack.delete(f"posts/{COMMUNITY}/aviso.txt")
    site.stack.drain()
    assert site.publish() == {"batchItemFailures": []}
    assert f"posts/{aviso}/index.html" not in site.paths()
    assert "Atención" not in site.read("index.html")
    assert aviso not in site.read("feed.json")
    assert site.deletes == 1


def test_duplicate_and_replayed_records_write_nothing_more(site: Site) -> None:
    event = site.upload("clinic-hours.json", _sample("clinic-hours.json"))
    doubled = {"Records": [*event["Records"], *event["Records"]]}  # the stream delivered each twice
    assert site.publish(doubled) == {"batchItemFailures": []}
    first = list(site.puts)
    assert "index.html" in first and len(first) == len(set(first))
    etags = site.etags()
    assert site.publish(event) == {"batchItemFailures": []}  # the whole batch retried
    assert site.puts == [] and site.deletes == 0
    assert site.etags() == etags


def test_a_post_holding_markup_renders_inert(site: Site) -> None:
    text = (
        "Read this <script>window.__pwned = 1</script> and "
        '<img src=x onerror="window.__pwned=2"> then javascript:alert(1) or bit.ly/safe-link'
    )
    site.publish(site.upload("xss.json", json.dumps({"text": text, "title": "<b>bold</b> title"})))
    post = site.post_id("xss.json")
    for path in ("index.html", f"posts/{post}/index.html"):
        html = site.read(path)
        assert "<script>window" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
        document = html5lib.parse(html, namespaceHTMLElements=False)
        scripts = [s.get("src") for s in document.iter("script")]
        assert scripts in ([], ["join.js"], ["../../join.js"]), scripts
        assert not [el for el in document.iter() if any(a.startswith("on") for a in el.attrib)]
        hrefs = [a.get("href", "") for a in document.iter("a")]
        assert not [h for h in hrefs if h.lower().startswith("javascript:")]
        assert "https://bit.ly/safe-link" in hrefs


def test_a_scheduled_post_is_not_published_before_its_time(site: Site) -> None:
    site.publish(site.upload("welcome.md", _sample("welcome.md")))
    body = {"text": "Registration opens in 2099.", "publish_at": "2099-01-01T09:00:00Z"}
    site.publish(site.upload("later.json", json.dumps(body)))
    later = site.post_id("later.json")
    assert f"posts/{later}/index.html" not in site.paths()
    assert "Registration opens in 2099" not in site.read("index.html")


def test_records_of_other_items_are_ignored(site: Site) -> None:
    event = site.upload("welcome.md", _sample("welcome.md"))
    outcomes = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"].startswith("UPLOAD#")]
    assert outcomes
    assert site.publish({"Records": outcomes}) == {"batchItemFailures": []}
    assert site.paths() == set() and site.puts == []


def test_the_stream_records_of_an_upload_an_edit_and_a_delete_as_changes(site: Site) -> None:
    """Each of moto's real records, typed by the stream adapter: posts and the profile become
    changes; outcomes, claims and a key's items are none."""
    from herald.content.adapters.dynamo_stream import content_change
    from herald.content.changes import CommunityProfileChanged, PostAdded, PostChanged, PostRemoved
    from herald.content.models import Community, Post

    def typed(event: dict[str, Any]) -> list[tuple[str, str, object]]:
        out = []
        for record in event["Records"]:
            keys = record["dynamodb"]["Keys"]
            out.append((keys["pk"]["S"], keys["sk"]["S"], content_change(record)))
        return out

    added = typed(site.upload("clinic-hours.json", _sample("clinic-hours.json")))
    clinic = site.post_id("clinic-hours.json")
    posts = [c for pk, sk, c in added if sk == f"POST#{clinic}"]
    assert posts and all(isinstance(c, PostAdded) and isinstance(c.post, Post) for c in posts)
    first = posts[0]
    assert isinstance(first, PostAdded) and isinstance(first.post, Post)
    assert (first.community, first.post_id, first.post.id, first.post.version) == (
        COMMUNITY,
        clinic,
        clinic,
        1,
    )
    assert first.post.correlation_id and first.written_at is not None
    profiles = [c for pk, sk, c in added if sk == "PROFILE"]
    assert profiles and all(isinstance(c, CommunityProfileChanged) for c in profiles)
    assert any(isinstance(c, CommunityProfileChanged) and isinstance(c.new, Community) for c in profiles)
    others = [(pk, sk, c) for pk, sk, c in added if not sk.startswith("POST#") and sk != "PROFILE"]
    assert {pk.split("#")[0] for pk, _, _ in others} >= {"UPLOAD", "KEY"}
    assert all(c is None for _, _, c in others)

    edited = json.loads(_sample("clinic-hours.json"))
    edited["text"] = edited["text"].replace("8:00 to 16:00", "9:00 to 17:00")
    changed = [
        c
        for _, sk, c in typed(site.upload("clinic-hours.json", json.dumps(edited)))
        if sk.startswith("POST#")
    ]
    assert changed and all(isinstance(c, PostChanged) for c in changed)
    change = changed[0]
    assert isinstance(change, PostChanged) and isinstance(change.old, Post) and isinstance(change.new, Post)
    assert (change.old.version, change.new.version, change.releases) == (1, 2, False)
    assert "9:00 to 17:00" in change.new.text and "9:00 to 17:00" not in change.old.text

    site.stack.delete(f"posts/{COMMUNITY}/clinic-hours.json")
    site.stack.drain()
    event = site.stream_event()
    removals = [r for r in event["Records"] if r["dynamodb"]["Keys"]["sk"]["S"] == f"POST#{clinic}"]
    assert removals and all("NewImage" not in r["dynamodb"] for r in removals)
    gone = [content_change(r) for r in removals]
    assert all(isinstance(c, PostRemoved) and c.old == change.new for c in gone)


def test_an_unreadable_old_version_is_not_taken_for_a_new_post(site: Site) -> None:
    """A post's page comes down when the version before the change cannot be read and the post is no
    longer due; had the change been an addition, there would be no page to take down."""
    from herald.content.changes import CommunityProfileChanged, PostAdded, PostChanged, Unreadable
    from herald.site.publisher import publish_changes

    site.publish(site.upload("welcome.md", _sample("welcome.md")))
    site.publish(site.upload("later.json", json.dumps({"text": "Registration opens soon."})))
    later = site.post_id("later.json")
    page = f"posts/{later}/index.html"
    assert page in site.paths()
    # The table now holds it scheduled for 2099; its stream records are not published here.
    site.upload(
        "later.json", json.dumps({"text": "Registration opens soon.", "publish_at": "2099-01-01T09:00:00Z"})
    )
    publisher = site.handler.publisher()
    stored = publisher.content.posts(COMMUNITY, [later])[later]
    added = PostAdded(event_id="a", community=COMMUNITY, post_id=later, post=stored)
    assert publish_changes(publisher, [added]).failed_event_ids == set()
    assert page in site.paths()  # a new post that is not due has no page to take down
    unreadable = PostChanged(
        event_id="b", community=COMMUNITY, post_id=later, old=Unreadable("not a post"), new=stored
    )
    result = publish_changes(publisher, [unreadable])
    [publication] = result.publications
    assert page in publication.deleted
    assert page not in site.paths()

    community = publisher.content.community(COMMUNITY)
    assert community is not None
    counted = CommunityProfileChanged(event_id="c", community=COMMUNITY, old=community, new=community)
    odd = CommunityProfileChanged(event_id="d", community=COMMUNITY, old=Unreadable("?"), new=community)
    assert [p.mode for p in publish_changes(publisher, [counted]).publications] == ["incremental"]
    assert [p.mode for p in publish_changes(publisher, [odd]).publications] == ["full"]
