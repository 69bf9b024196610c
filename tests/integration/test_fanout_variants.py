"""Language variants on moto: the publisher fed the content table's stream, the planner and the sender
their queues, with the event JSON Lambda sends, pushing to the loopback push service (which decrypts).

Each member gets one push of a post, in the first language of their list the post has (else the
original); a post that names its coming translations waits for them until its window ends; a variant
that comes after the push reaches only members no push matched; an edited variant never pushes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from herald.content.models import Post, VariantOrigin, VariantSummary
from herald.members.rules import Member
from tests.integration.fanout_rig import COMMUNITY, Rig, rig_fixture  # noqa: F401

SITE = "https://herald.example"
TEXTS = {
    "en": ("Clinic open on Saturday", "The clinic opens at 9 on Saturday, free for everyone."),
    "fr": ("Clinique ouverte samedi", "La clinique ouvre à 9 h samedi, gratuite pour tous."),
    "ar": ("العيادة مفتوحة يوم السبت", "تفتح العيادة الساعة التاسعة يوم السبت مجانًا للجميع."),
    "es": ("Clínica abierta el sábado", "La clínica abre a las 9 el sábado, gratis para todos."),
}


def _summary(
    lang: str, at: datetime, *, origin: VariantOrigin = VariantOrigin.HUMAN, title: str | None = None
) -> VariantSummary:
    text_title, excerpt = TEXTS[lang]
    return VariantSummary(lang=lang, title=title or text_title, excerpt=excerpt, origin=origin, updated_at=at)


def put_post(
    rig: Rig,
    post_id: str,
    *variants: str,
    translations: tuple[str, ...] = (),
    window_s: int | None = None,
) -> Post:
    """An English post stored as the ingest stores it (its INSERT is what the publisher reads)."""
    from herald.ingest.adapters.dynamo_content import post_item

    at = datetime.fromtimestamp(rig.clock.now, UTC)
    title, excerpt = TEXTS["en"]
    post = Post(
        id=post_id,
        community=COMMUNITY,
        key=f"posts/{COMMUNITY}/{post_id}.txt",
        title=title,
        text=f"{title}. {excerpt}",
        excerpt=excerpt,
        language="en",
        content_hash=post_id.ljust(64, "0"),
        created_at=at,
        updated_at=at,
        variants={lang: _summary(lang, at) for lang in variants},
        translations=list(translations),
        translation_window_s=window_s,
    )
    rig.ddb.put_item(TableName=rig.env["CONTENT_TABLE"], Item=post_item(post))
    return post


def add_variant(rig: Rig, post_id: str, lang: str, **options: Any) -> None:
    """A variant stored on its post (the post item's ``variants`` map, a MODIFY of the post)."""
    from herald.core.aws import to_item

    at = datetime.fromtimestamp(rig.clock.now, UTC)
    current = rig.content().posts(COMMUNITY, [post_id])[post_id]
    variants = {k: v.model_dump(mode="json") for k, v in current.variants.items()}
    variants[lang] = _summary(lang, at, **options).model_dump(mode="json")
    rig.ddb.update_item(
        TableName=rig.env["CONTENT_TABLE"],
        Key={"pk": {"S": f"C#{COMMUNITY}"}, "sk": {"S": f"POST#{post_id}"}},
        UpdateExpression="SET variants = :v",
        ExpressionAttributeValues={":v": to_item({"v": variants})["v"]},
    )


def pushes(rig: Rig, member: Member) -> list[dict[str, Any]]:
    """What the member's browser received: each push's decrypted JSON and its Topic."""
    return [{**d.json, "topic": d.headers["Topic"]} for d in rig.push.received(rig.sid(member))]


def langs_of(rig: Rig, member: Member) -> list[str]:
    return [str(p.get("lang")) for p in pushes(rig, member)]


@contextmanager
def aws_calls(rig: Rig) -> Iterator[Counter[str]]:
    """Every AWS call the rig's clients make meanwhile, by operation and table (or queue)."""
    calls: Counter[str] = Counter()
    names = {rig.env[k]: k for k in ("CONTENT_TABLE", "DELIVERIES_TABLE", "MEMBERS_TABLE")}
    names.update({rig.env[k]: k for k in ("PLANNER_QUEUE_URL", "PUSH_JOB_QUEUE_URL", "SCHEDULE_QUEUE_URL")})

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        where = params.get("TableName") or params.get("QueueUrl") or ""
        calls[f"{model.name}:{names.get(where, where)}"] += 1

    events = [(rig.ddb, "dynamodb"), (rig.sqs, "sqs"), (rig.sns, "sns")]
    for client, service in events:
        client.meta.events.register(f"before-parameter-build.{service}", count)
    try:
        yield calls
    finally:
        for client, service in events:
            client.meta.events.unregister(f"before-parameter-build.{service}", count)


# ----------------------------------------------------------------------------- delivery


def test_each_member_gets_one_push_in_the_first_language_of_their_list_the_post_has(rig: Rig) -> None:
    anyone = rig.join()
    french = rig.join(languages=["fr"])
    arabic_first = rig.join(languages=["ar", "fr"])
    german = rig.join(languages=["de"])
    spanish_then_english = rig.join(languages=["es", "en"])
    app = rig.join(web=False, device="fcm-token-fr", languages=["fr"])
    put_post(rig, "p1", "fr", "ar")
    rig.drain()

    def only(member: Member) -> dict[str, Any]:
        [push] = pushes(rig, member)
        return push

    en, fr, ar = only(anyone), only(french), only(arabic_first)
    assert (en["lang"], en["title"], en["body"]) == ("en", *TEXTS["en"])
    assert en["url"] == f"{SITE}/{COMMUNITY}/posts/p1/"
    assert (fr["lang"], fr["title"], fr["body"]) == ("fr", *TEXTS["fr"])
    assert fr["url"] == f"{SITE}/{COMMUNITY}/fr/posts/p1/"
    assert (ar["lang"], ar["title"], ar["url"]) == ("ar", TEXTS["ar"][0], f"{SITE}/{COMMUNITY}/ar/posts/p1/")
    assert only(spanish_then_english)["lang"] == "en"  # no es variant: the next of the list
    assert pushes(rig, german) == []
    # One notification of the post in every language: the same Topic and tag.
    assert {p["topic"] for p in (en, fr, ar)} == {"p1"}
    assert {p["tag"] for p in (en, fr, ar)} == {"post-p1"}
    [message] = rig.mobile_messages(app)
    gcm = json.loads(message["GCM"])["fcmV1Message"]["message"]
    assert gcm["notification"]["title"] == TEXTS["fr"][0]
    assert gcm["data"]["url"] == f"{SITE}/{COMMUNITY}/fr/posts/p1/"
    assert gcm["android"]["collapse_key"] == "p1"  # the post's collapse key, whatever the language
    assert rig.push.duplicates() == {}
    assert rig.stats("p1") == {"targeted": 5, "sent": 5, "failed": 0, "pruned": 0, "deferred": 0}


def test_variants_cost_no_aws_call_per_member(rig: Rig) -> None:
    """The same members, one post without variants and one with three, each member matched by both
    (every list reads the original): the planner's and the senders' calls are the same, call for
    call (the texts travel in the jobs, a message is made per job and language, not per member)."""
    lists = [[], ["fr", "en"], ["ar", "en"], ["es", "en"], ["en"], ["de", "en"]]
    web = [rig.join(languages=lists[i % 6]) for i in range(24)]
    for i in range(4):
        rig.join(web=False, device=f"fcm-token-{i}", languages=[["fr", "en"], []][i % 2])
    put_post(rig, "plain")
    with aws_calls(rig) as plain:
        rig.drain()
    put_post(rig, "varied", "fr", "ar", "es")
    with aws_calls(rig) as varied:
        rig.drain()
    assert len(rig.push.received()) == 48 and rig.push.duplicates() == {}
    assert Counter(langs_of(rig, web[1])) == Counter({"en": 1, "fr": 1})

    # The fan-out's calls (deliveries and members tables, planner and push queues, SNS) are equal,
    # call for call; the publisher's reads of the content table are per post (the community's
    # settings, its pages), a few, never per member.
    def fanout(calls: Counter[str]) -> dict[str, int]:
        return {k: v for k, v in calls.items() if not k.endswith(":CONTENT_TABLE")}

    def content(calls: Counter[str]) -> int:
        return sum(v for k, v in calls.items() if k.endswith(":CONTENT_TABLE"))

    assert fanout(varied) == fanout(plain), (plain, varied)
    assert 0 <= content(varied) - content(plain) <= 3, (plain, varied)
    assert plain["Publish:"] == 4 and plain["SendMessageBatch:PUSH_JOB_QUEUE_URL"] >= 1


# ----------------------------------------------------------------------------- waiting for translations


def test_the_push_waits_until_every_translation_named_has_come(rig: Rig) -> None:
    anyone, french, arabic = rig.join(), rig.join(languages=["fr"]), rig.join(languages=["ar"])
    put_post(rig, "p2", translations=("fr", "ar"), window_s=900)
    rig.drain()
    assert rig.push.received() == []  # the page is up; the push waits
    assert rig.content().posts(COMMUNITY, ["p2"])
    rig.clock.advance(60)
    add_variant(rig, "p2", "fr")
    rig.drain()
    assert rig.push.received() == []  # ar still missing, the window still open
    rig.clock.advance(60)
    add_variant(rig, "p2", "ar")
    rig.drain()
    assert (langs_of(rig, anyone), langs_of(rig, french), langs_of(rig, arabic)) == (["en"], ["fr"], ["ar"])
    # The window's wake-up comes afterwards: the push has started, nothing more goes out.
    rig.clock.advance(900)
    rig.drain()
    assert len(rig.push.received()) == 3 and rig.push.duplicates() == {}
    assert rig.queued("SCHEDULE_QUEUE_URL") == 0


def test_the_window_ends_first_then_the_late_translation_reaches_only_its_readers(rig: Rig) -> None:
    anyone, french, arabic = rig.join(), rig.join(languages=["fr"]), rig.join(languages=["ar", "fr"])
    spanish = rig.join(languages=["es"])
    put_post(rig, "p3", translations=("fr", "ar"), window_s=7200)  # over SQS's 900 s: in hops
    rig.drain()
    add_variant(rig, "p3", "fr")
    rig.drain()
    assert rig.push.received() == []
    rig.clock.advance(3600)
    rig.drain()
    assert rig.push.received() == []  # a hop of the window's wake-up: still waiting
    rig.clock.advance(3601)
    rig.drain()  # the window ends: the push goes out in what the post has
    assert (langs_of(rig, anyone), langs_of(rig, french), langs_of(rig, arabic)) == (["en"], ["fr"], ["fr"])
    assert langs_of(rig, spanish) == []
    rig.clock.advance(60)
    add_variant(rig, "p3", "ar")  # late: [ar, fr] was pushed fr; nobody reads only ar
    rig.drain()
    assert len(rig.push.received()) == 3 and rig.push.duplicates() == {}
    add_variant(rig, "p3", "es")  # late: the es reader matched nothing before
    rig.drain()
    assert langs_of(rig, spanish) == ["es"]
    assert len(rig.push.received()) == 4 and rig.push.duplicates() == {}


# ----------------------------------------------------------------------------- late and edited variants


def test_a_late_variant_pushes_only_members_no_push_matched_and_never_twice(rig: Rig) -> None:
    anyone = rig.join()
    french = rig.join(languages=["fr"])
    arabic_french = rig.join(languages=["ar", "fr"])
    german = rig.join(languages=["de"])
    arabic = rig.join(languages=["ar"])
    app = rig.join(web=False, device="fcm-token-late", languages=["fr"])
    put_post(rig, "p4")
    rig.drain()
    assert [langs_of(rig, m) for m in (anyone, french, arabic_french, german)] == [["en"], [], [], []]

    rig.clock.advance(30)
    add_variant(rig, "p4", "fr")  # fr arrives after the push
    rig.drain()
    assert [langs_of(rig, m) for m in (anyone, french, arabic_french, german)] == [["en"], ["fr"], ["fr"], []]
    [message] = rig.mobile_messages(app)
    assert json.loads(message["GCM"])["fcmV1Message"]["message"]["notification"]["title"] == TEXTS["fr"][0]
    [late] = pushes(rig, french)
    assert late["url"] == f"{SITE}/{COMMUNITY}/fr/posts/p4/" and late["topic"] == "p4"

    rig.clock.advance(30)
    add_variant(rig, "p4", "fr", title="Clinique ouverte samedi (corrigé)")  # an edited variant
    rig.drain()
    add_variant(rig, "p4", "ar")  # ar: [ar, fr] had fr already; [ar] matched nothing before
    rig.drain()
    assert langs_of(rig, arabic) == ["ar"]
    assert langs_of(rig, arabic_french) == ["fr"]
    everyone = (anyone, french, arabic_french, german, arabic)
    assert [len(pushes(rig, m)) for m in everyone] == [1, 1, 1, 0, 1]
    assert len(rig.mobile_messages(app)) == 1
    assert rig.push.duplicates() == {}

    # The whole stream again (a retried batch): the marker and the ledger push nobody again.
    rig._positions.clear()
    rig.drain()
    assert [len(pushes(rig, m)) for m in everyone] == [1, 1, 1, 0, 1]
    assert len(rig.mobile_messages(app)) == 1


def test_a_machine_variant_is_not_pushed_unless_the_community_pushes_them(rig: Rig) -> None:
    french = rig.join(languages=["fr"])
    anyone = rig.join()
    put_post(rig, "p5")
    rig.drain()
    add_variant(rig, "p5", "fr", origin=VariantOrigin.MACHINE)
    rig.drain()
    assert langs_of(rig, french) == [] and langs_of(rig, anyone) == ["en"]
    # A human variant replaces the machine one: fr was never pushed, so its readers get it now.
    add_variant(rig, "p5", "fr")
    rig.drain()
    assert langs_of(rig, french) == ["fr"] and langs_of(rig, anyone) == ["en"]


def test_a_variant_deleted_and_uploaded_again_pushes_nobody_again(rig: Rig) -> None:
    french = rig.join(languages=["fr"])
    put_post(rig, "p7")
    rig.drain()
    add_variant(rig, "p7", "fr")
    rig.drain()
    assert langs_of(rig, french) == ["fr"]
    rig.ddb.update_item(
        TableName=rig.env["CONTENT_TABLE"],
        Key={"pk": {"S": f"C#{COMMUNITY}"}, "sk": {"S": "POST#p7"}},
        UpdateExpression="REMOVE variants.fr",
    )
    rig.drain()
    add_variant(rig, "p7", "fr")
    rig.drain()
    assert langs_of(rig, french) == ["fr"] and rig.push.duplicates() == {}


def test_a_window_longer_than_an_sqs_delay_waits_in_hops_of_900_s(rig: Rig) -> None:
    sent: list[tuple[dict[str, Any], int]] = []

    class Recording:
        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def send(self, bodies: Any, delay_s: int = 0) -> None:
            sent.extend((json.loads(b) if isinstance(b, str) else dict(b), delay_s) for b in bodies)
            self.queue.send(bodies, delay_s)

    rig.use_publisher(lambda name, port: Recording(port) if name == "schedule" else port, max_delay_s=900)
    anyone = rig.join()
    put_post(rig, "p6", translations=("fr",), window_s=2000)
    rig.drain()
    [(body, delay)] = [(b, d) for b, d in sent if b.get("kind") == "translations"][:1]
    assert delay == 900 and body["post_id"] == "p6"
    assert body["until"] == rig.clock.now + 2000
    publisher = rig.publisher_app.publisher()
    for wait, expected in ((900, 900), (900, 200)):
        rig.clock.advance(wait)
        before = len(sent)
        assert publisher.wake(body).what == "waiting"
        assert [d for _, d in sent[before:]] == [expected]
    rig.clock.advance(200)
    assert publisher.wake(body).what == "fanned out"
    assert publisher.wake(body).what == "already"  # a redelivered wake-up starts nothing more
    rig.drain()
    assert langs_of(rig, anyone) == ["en"] and rig.push.duplicates() == {}


# ----------------------------------------------------------------------------- uploads through S3


def test_uploaded_variants_have_their_pages_on_the_site_before_their_push(rig: Rig) -> None:
    """The original and its French variant uploaded through S3 and ingested: the publisher (composed
    as the function composes it, with the variants reader) writes the variant's page, which the
    French member's push links to."""
    anyone, french = rig.join(), rig.join(languages=["fr"])
    en_title, en_text = TEXTS["en"]
    fr_title, fr_text = TEXTS["fr"]
    rig.upload(
        f"posts/{COMMUNITY}/clinic.md",
        f"---\ntitle: {en_title}\ntranslations: [fr]\ntranslation_window: 10m\n---\n{en_text}\n",
    )
    rig.drain()
    assert rig.push.received() == []  # waits for its French translation
    rig.upload(f"posts/{COMMUNITY}/clinic.fr.md", f"---\ntitle: {fr_title}\n---\n{fr_text}\n")
    outcome = rig.content().outcome(f"posts/{COMMUNITY}/clinic.fr.md")
    assert outcome is not None and outcome.status == "published", outcome
    [pid] = outcome.post_ids
    rig.drain()

    site = rig.env["SITE_BUCKET"]
    page = (
        rig.s3.get_object(Bucket=site, Key=f"{COMMUNITY}/fr/posts/{pid}/index.html")["Body"].read().decode()
    )
    assert '<html lang="fr"' in page and fr_text in page
    [en] = pushes(rig, anyone)
    [fr] = pushes(rig, french)
    assert (en["lang"], en["url"]) == ("en", f"{SITE}/{COMMUNITY}/posts/{pid}/")
    assert (fr["lang"], fr["title"], fr["url"]) == ("fr", fr_title, f"{SITE}/{COMMUNITY}/fr/posts/{pid}/")
    assert rig.push.duplicates() == {}
