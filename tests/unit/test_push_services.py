"""Push failures are counted per push service, so a stranger's endpoint cannot raise the operator's alarm.

The sender (``PushDelivery``, with in-memory ports) tallies every attempt under its push service
(``fcm``, ``mozilla``, ``apple``, ``windows``, ``other``, ``sns``); the handler emits one EMF document
per service; :class:`BroadFailureRule` (what ``PushServicesFailingAlarm`` computes, checked against
the template in tests/template) fires only when known push services fail broadly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.fanout.channels import Channels
from herald.fanout.channels.web import WebPushChannel
from herald.fanout.delivery import (
    WEB_PUSH_SERVICES,
    BroadFailureRule,
    DeliveryResult,
    Outcome,
    RetryPolicy,
    ServiceTally,
    push_service,
)
from herald.fanout.rules import PostSummary, PushJob, Target
from herald.fanout.service import PushDelivery
from tests.fakes.fanout import MemoryLedger
from tests.integration.conftest import load_handler

P256DH = "BOrKq5bPmSnNNtE3MPCr-ER-bG0RADQzbzUFvwhyLQ5uOxSTvm1MB25r4P3wgmo54v0uj-y3pUw4qiWkE9M6ge4"
AUTH = "AAAAAAAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize(
    ("endpoint", "service"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "fcm"),
        ("https://FCM.googleapis.com./wp/abc", "fcm"),
        ("https://updates.push.services.mozilla.com/wpush/v2/abc", "mozilla"),
        ("https://web.push.apple.com/QGx", "apple"),
        ("https://wns2-par02p.notify.windows.com/w/?token=abc", "windows"),
        ("https://fcm.googleapis.com.evil.example/wp/abc", "other"),
        ("https://evilfcm.googleapis.com/wp/abc", "other"),
        ("https://push.evil.example/wp/abc", "other"),
        ("http://127.0.0.1:4580/push/abc", "other"),
        ("not a url", "other"),
    ],
)
def test_push_service_of_an_endpoint(endpoint: str, service: str) -> None:
    assert push_service(endpoint) == service


class Queue:
    def send(self, bodies: Sequence[Mapping[str, Any]], delay_s: int = 0) -> None:
        pass


class Members:
    def prune_subscription(self, community: str, member_id: str, subscription: str) -> bool:
        return True


class Answers:
    """A Web Push sender answering by the endpoint's host: what each push service says."""

    def __init__(self, by_host: Mapping[str, int]) -> None:
        self.by_host = by_host

    def send(self, subscription: Any, payload: bytes, **options: Any) -> DeliveryResult:
        from urllib.parse import urlsplit

        from herald.fanout.delivery import classify_status

        status = self.by_host[urlsplit(subscription["endpoint"]).hostname or ""]
        return DeliveryResult(classify_status(status), status=status)


def _job(endpoints: Sequence[str]) -> PushJob:
    post = PostSummary("harbour", "0123456789abcdef0123", "T", "E", "https://herald.example/p/")
    targets = tuple(
        Target(
            member_id=f"m{i}",
            channel="web",
            subscription=f"s{i}",
            web_push={"endpoint": e, "keys": {"p256dh": P256DH, "auth": AUTH}},
        )
        for i, e in enumerate(endpoints)
    )
    return PushJob(job_id="j", post=post, targets=targets)


def _delivery(answers: Answers) -> PushDelivery:
    return PushDelivery(
        ledger=MemoryLedger(),
        members=Members(),  # type: ignore[arg-type]
        push_queue=Queue(),
        channels=Channels([WebPushChannel(lambda: answers)]),
        policy=RetryPolicy(max_attempts=3, base_s=0.0),
        threads=1,
    )


def test_a_strangers_endpoints_answering_401_403_400_count_under_other_and_trip_nothing() -> None:
    """A join flood of endpoints on the attacker's own host, answering what they like, beside real members."""
    answers = Answers({"push.evil.example": 401, "fcm.googleapis.com": 201, "web.push.apple.com": 201})
    evil = [f"https://push.evil.example/wp/{i}" for i in range(60)]
    real = [f"https://fcm.googleapis.com/fcm/send/{i}" for i in range(30)] + [
        f"https://web.push.apple.com/{i}" for i in range(25)
    ]
    report = _delivery(answers).handle(_job(evil + real))
    tally = report.services
    assert tally.rows() == [("apple", 25, 0), ("fcm", 30, 0), ("other", 60, 60)]
    assert tally.auth_failures == {"other": 60}
    assert report.stats.auth_failures == 60  # still on the post's statistics, for the record
    assert not BroadFailureRule().fires(tally)
    for status in (403, 400):
        answers.by_host["push.evil.example"] = status  # type: ignore[index]
        assert not BroadFailureRule().fires(_delivery(answers).handle(_job(evil + real)).services)


def test_a_refused_vapid_key_shows_on_every_known_service_and_fires() -> None:
    answers = Answers({"fcm.googleapis.com": 403, "updates.push.services.mozilla.com": 401})
    endpoints = [f"https://fcm.googleapis.com/fcm/send/{i}" for i in range(25)] + [
        f"https://updates.push.services.mozilla.com/wpush/v2/{i}" for i in range(20)
    ]
    tally = _delivery(answers).handle(_job(endpoints)).services
    assert tally.rows() == [("fcm", 25, 25), ("mozilla", 20, 20)]
    rule = BroadFailureRule()
    assert rule.failing(tally) == ["fcm", "mozilla"] and rule.fires(tally)


def test_gone_subscriptions_and_sent_pushes_are_not_failures_of_the_service() -> None:
    tally = ServiceTally()
    for outcome in (Outcome.SENT, Outcome.PRUNE, Outcome.RETRY, Outcome.FAILED, Outcome.AUTH_FAILURE):
        tally.add("fcm", outcome)
    assert tally.rows() == [("fcm", 5, 3)] and tally.auth_failures == {"fcm": 1}


@pytest.mark.parametrize(
    ("sample", "fires"),
    [
        ({"other": (100_000, 100_000)}, False),
        ({"fcm": (30, 30)}, False),  # one service failing, few attempts: a bad hour for a few members
        ({"fcm": (30, 15), "apple": (20, 10)}, True),  # two known services failing half their attempts
        ({"fcm": (30, 15), "apple": (19, 19)}, False),
        ({"fcm": (500, 450)}, True),  # one service, 90% of many attempts
        ({"fcm": (500, 449), "other": (500, 500)}, False),
    ],
)
def test_the_broad_failure_rule(sample: dict[str, tuple[int, int]], fires: bool) -> None:
    tally = ServiceTally()
    for service, (attempts, failures) in sample.items():
        for i in range(attempts):
            tally.add(service, Outcome.FAILED if i < failures else Outcome.SENT)
    assert BroadFailureRule().fires(tally) is fires
    assert "other" not in WEB_PUSH_SERVICES


def test_the_handler_emits_attempts_and_failures_per_push_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "herald")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")
    app = load_handler("push_sender")
    tally = ServiceTally()
    for outcome in (Outcome.SENT, Outcome.AUTH_FAILURE):
        tally.add("fcm", outcome)
    tally.add("other", Outcome.FAILED)
    app.emit_service_metrics(tally)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emitted = {
        d["push_service"]: (
            d["PushServiceAttempts"],
            d["PushServiceFailures"],
            d["_aws"]["CloudWatchMetrics"],
        )
        for d in documents
    }
    assert emitted.keys() == {"fcm", "other"}
    assert emitted["fcm"][:2] == ([2.0], [1.0]) and emitted["other"][:2] == ([1.0], [1.0])
    for *_, (directive,) in emitted.values():
        assert directive["Namespace"] == "Herald"
        assert sorted(directive["Dimensions"][0]) == ["push_service", "service"]


_SCHEMES = st.sampled_from(["https://", "http://", "HTTPS://", "", "//", "https:/", "ftp://", "a+b://"])
_HOSTS = st.sampled_from(
    [
        "fcm.googleapis.com",
        "FCM.googleapis.com.",
        "wns2-par02p.notify.windows.com",
        "web.push.apple.com",
        "evilfcm.googleapis.com",
        "fcm.googleapis.com.evil.example",
        "[::1]",
        "[::1",
        "u:p@fcm.googleapis.com",
        "fcm.googleapis.com:443",
        "",
        "not a url",
    ]
)
_TAILS = st.sampled_from(["", "/", "/wp/abc", "?q=1", "#f", "/a?b#c", ":80/x", "@evil.example/x"])


@settings(max_examples=500)
@given(_SCHEMES, _HOSTS, _TAILS, st.text(max_size=5))
def test_the_push_service_kept_per_authority_is_the_one_the_whole_url_gives(
    scheme: str, host: str, tail: str, junk: str
) -> None:
    from herald.fanout.delivery import _service_of_url

    for url in (scheme + host + tail, scheme + host + junk + tail, junk + scheme + host + tail):
        assert push_service(url) == _service_of_url(url), url
