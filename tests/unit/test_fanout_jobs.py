"""The fan-out's jobs on the wire: the JSON Herald has always sent, read back into the same jobs; the
planner and the sender parse each SQS record into its job, and a record that is not one fails alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from herald.fanout.jobs import PostJob, PostSummary, PushJob, ReleaseJob, ShardJob, Target, planner_jobs
from herald.fanout.rules import post_job, shard_job
from herald.fanout.service import JobReport, release_job
from tests.integration.conftest import LambdaContext, load_handler

POST = PostSummary(
    "harbour",
    "0123456789abcdef0123",
    "Ferry ✓",
    "E",
    "https://herald.example/harbour/posts/0123456789abcdef0123/",
    language="en",
    topics=("health", "sea"),
    publish_at=1767225600.0,
    started_at=1767225601.5,
    correlation_id="s3-REQ1",
)
POST_JSON = (
    '{"community":"harbour","post_id":"0123456789abcdef0123","title":"Ferry ✓","excerpt":"E",'
    '"url":"https://herald.example/harbour/posts/0123456789abcdef0123/","language":"en",'
    '"topics":["health","sea"],"publish_at":1767225600.0,"started_at":1767225601.5,"correlation_id":"s3-REQ1"}'
)
WEB = {"endpoint": "https://push.example/x", "keys": {"p256dh": "P", "auth": "A"}}
ARN = "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/app/1"


def _wire(body: dict[str, Any]) -> str:
    """The body as SqsJobQueue sends it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def test_a_push_job_is_the_json_it_always_was() -> None:
    job = PushJob(
        job_id="j1",
        post=POST,
        targets=(
            Target(member_id="m1", channel="web", subscription="s1", web_push=WEB),
            Target(member_id="m2", channel="fcm", subscription="s2", address=ARN),
        ),
        attempt=2,
        not_before=1767229200.0,
        deferred_recorded=True,
    )
    text = (
        '{"v":1,"kind":"push","job":"j1","post":' + POST_JSON + ',"attempt":2,"members":['
        '{"m":"m1","c":"web","s":"s1","w":{"endpoint":"https://push.example/x","keys":{"p256dh":"P","auth":"A"}}},'
        '{"m":"m2","c":"fcm","s":"s2","a":"' + ARN + '"}],"not_before":1767229200.0,"deferred_recorded":true}'
    )
    assert _wire(job.as_dict()) == text
    back = PushJob.model_validate_json(text)
    assert (
        back == job and [t.not_before for t in back.targets] == [1767229200.0] * 2
    )  # members wait with the job
    minimal = PushJob(
        job_id="j2",
        post=PostSummary("c", "p", "", "", "u"),
        targets=(Target(member_id="m", channel="apns", subscription="s", address="a"),),
    )
    assert _wire(minimal.as_dict()) == (
        '{"v":1,"kind":"push","job":"j2","post":{"community":"c","post_id":"p","title":"","excerpt":"",'
        '"url":"u","language":null,"topics":[],"publish_at":null,"started_at":null,"correlation_id":null},'
        '"attempt":1,"members":[{"m":"m","c":"apns","s":"s","a":"a"}]}'
    )
    assert PushJob.from_dict(json.loads(_wire(minimal.as_dict()))) == minimal


def test_the_planner_jobs_are_the_json_they_always_were() -> None:
    assert _wire(release_job(POST)) == '{"v":1,"kind":"release","post":' + POST_JSON + "}"
    assert _wire(post_job(POST)) == '{"v":1,"kind":"post","post":' + POST_JSON + "}"
    assert (
        _wire(shard_job(POST, 3, "m9"))
        == '{"v":1,"kind":"shard","post":' + POST_JSON + ',"shard":3,"after":"m9"}'
    )
    assert (
        _wire(shard_job(POST, 0)) == '{"v":1,"kind":"shard","post":' + POST_JSON + ',"shard":0,"after":null}'
    )
    parsed = [
        planner_jobs.validate_json(_wire(b))
        for b in (release_job(POST), post_job(POST), shard_job(POST, 3, "m9"))
    ]
    assert parsed == [ReleaseJob(post=POST), PostJob(post=POST), ShardJob(post=POST, shard=3, after="m9")]


def _jobs() -> list[PushJob | ReleaseJob | PostJob | ShardJob]:
    return [
        PushJob(
            job_id="j1",
            post=POST,
            targets=(
                Target(member_id="m1", channel="web", subscription="s1", web_push=WEB),
                Target(member_id="m2", channel="fcm", subscription="s2", address=ARN),
            ),
            attempt=2,
            not_before=1767229200.0,
            deferred_recorded=True,
        ),
        PushJob(
            job_id="j2",
            post=PostSummary("c", "p", "", "", "u"),
            targets=(Target(member_id="m", channel="apns", subscription="s", address="a"),),
        ),
        ReleaseJob(post=POST),
        PostJob(post=POST),
        ShardJob(post=POST, shard=3, after="m9"),
        ShardJob(post=POST, shard=0),
    ]


def test_a_job_written_as_text_is_the_json_of_its_values_byte_for_byte() -> None:
    for job in _jobs():
        assert job.as_json() == _wire(job.as_dict())
    # Every character json.dumps escapes (and some it does not), in a title, a member id, an address.
    odd = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028\u2029\ufeff🚢 é ✓ </script>'
    post = PostSummary("c", odd, odd, odd, "u", topics=(odd,), started_at=1767225601.123456)
    job = PushJob(
        job_id=odd,
        post=post,
        targets=(Target(member_id=odd, channel="web", subscription=odd, web_push={"endpoint": odd}),),
        not_before=1767225601.000001,
    )
    assert job.as_json() == _wire(job.as_dict())
    assert PushJob.model_validate_json(job.as_json()) == job


@pytest.mark.parametrize("value", [1e-05, 5e-05, 1e-9, -2e-7, 1e16, 1e22, 0.0, -0.0, 1e-4, float("inf")])
def test_a_float_pydantic_writes_otherwise_is_written_as_json_dumps_writes_it(value: float) -> None:
    post = PostSummary("c", "p", "t", "e", "u", publish_at=value, started_at=value)
    for job in (
        PushJob(
            job_id="j",
            post=post,
            targets=(Target(member_id="m", channel="fcm", subscription="s", address="a"),),
            not_before=value,
        ),
        PushJob(
            job_id="j",
            post=PostSummary("c", "p", "t", "e", "u"),
            targets=(Target(member_id="m", channel="fcm", subscription="s", address="a"),),
            not_before=value,
        ),
        ShardJob(post=post, shard=1),
    ):
        assert job.as_json() == _wire(job.as_dict())


def test_a_trusted_target_is_the_validated_one() -> None:
    for trusted, validated in (
        (
            Target.trusted("m1", "web", "s1", web_push=WEB, not_before=1767229200.0),
            Target(member_id="m1", channel="web", subscription="s1", web_push=WEB, not_before=1767229200.0),
        ),
        (
            Target.trusted("m2", "fcm", "s2", address=ARN),
            Target(member_id="m2", channel="fcm", subscription="s2", address=ARN),
        ),
    ):
        assert trusted == validated and repr(trusted) == repr(validated)
        assert trusted.as_json() == validated.as_json() == _wire(validated.as_dict())
        assert trusted.model_copy(update={"not_before": 5.0}) == validated.model_copy(
            update={"not_before": 5.0}
        )
        assert Target.model_validate(trusted.as_dict()) == validated.model_copy(update={"not_before": None})
        with pytest.raises(ValueError):
            trusted.member_id = "other"  # type: ignore[misc]  # frozen, as a validated target is
    job = PushJob(job_id="j", post=POST, targets=(Target.trusted("m1", "web", "s1", web_push=WEB),))
    assert job.as_json() == _wire(job.as_dict())
    assert job == PushJob(
        job_id="j",
        post=POST,
        targets=(Target(member_id="m1", channel="web", subscription="s1", web_push=WEB),),
    )


def test_a_trusted_target_under_another_pydantic_is_model_constructs(monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.fanout import jobs

    monkeypatch.setattr(jobs, "_MODEL_SLOTS", ("__dict__",))  # not pydantic's: its own way, then
    trusted = Target.trusted("m1", "web", "s1", web_push=WEB, not_before=1767229200.0)
    assert trusted == Target(
        member_id="m1", channel="web", subscription="s1", web_push=WEB, not_before=1767229200.0
    )
    assert trusted.as_json() == '{"m":"m1","c":"web","s":"s1","w":' + _wire(WEB) + "}"


class _Sqs:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.bodies += [entry["MessageBody"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def test_the_sqs_queue_sends_a_body_given_as_text_as_it_is() -> None:
    from herald.fanout.adapters.sqs_jobs import SqsJobQueue

    sqs = _Sqs()
    queue = SqsJobQueue("https://sqs/push", sqs)
    jobs = _jobs()
    queue.send([j.as_json() for j in jobs] + [j.as_dict() for j in jobs])
    assert sqs.bodies == [_wire(j.as_dict()) for j in jobs] * 2


@pytest.mark.parametrize(
    "body",
    [
        '{"v":1,"kind":"shard","post":' + POST_JSON + "}",  # no shard
        '{"v":1,"kind":"unknown","post":' + POST_JSON + "}",
        '{"v":1,"kind":"release","post":{"community":"harbour"}}',
        "not json",
    ],
)
def test_a_body_that_is_not_a_planner_job_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        planner_jobs.validate_json(body)


def _record(message_id: str, body: str) -> dict[str, Any]:
    """One record of Lambda's SQS event (the shape the event source mapping sends)."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1767225600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1767225600001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:push-jobs",
        "awsRegion": "eu-west-1",
    }


class Handled:
    """Stands in for the sender's and the planner's service: what each record was parsed into."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def handle(self, job: PushJob, remaining: Any = None) -> JobReport:
        self.jobs.append(job)
        return JobReport()

    def on_job(self, job: Any) -> Any:
        from herald.fanout.service import PlanResult

        self.jobs.append(job)
        return PlanResult("page")


def test_the_sender_parses_each_record_into_a_push_job_and_fails_only_the_bad_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")
    app = load_handler("push_sender")
    handled = Handled()
    app.configure(lambda: handled)
    job = PushJob(
        job_id="j", post=POST, targets=(Target(member_id="m", channel="web", subscription="s", web_push=WEB),)
    )
    try:
        response = app.handler(
            {
                "Records": [
                    _record("good", _wire(job.as_dict())),
                    _record("no-members", _wire({**job.as_dict(), "members": None})),
                    _record("garbage", "{not json"),
                ]
            },
            LambdaContext(),
        )
    finally:
        app.configure(None)
    assert handled.jobs == [job]
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "no-members"}, {"itemIdentifier": "garbage"}]
    }


def test_the_planner_parses_each_record_into_its_job_and_fails_only_the_bad_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")
    app = load_handler("fanout_planner")
    handled = Handled()
    app.configure(lambda: handled)
    try:
        response = app.handler(
            {
                "Records": [
                    _record("shard", _wire(shard_job(POST, 2, "m1"))),
                    _record("unknown-kind", _wire({**release_job(POST), "kind": "publish"})),
                    _record("release", _wire(release_job(POST))),
                ]
            },
            LambdaContext(),
        )
    finally:
        app.configure(None)
    assert handled.jobs == [ShardJob(post=POST, shard=2, after="m1"), ReleaseJob(post=POST)]
    assert response == {"batchItemFailures": [{"itemIdentifier": "unknown-kind"}]}
