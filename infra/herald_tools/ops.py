"""What the on-call engineer asks a running Herald: status, outcomes, rejections, redrive, reprocess.

Each command is a function taking a :class:`herald_tools.stack.Target` and returning JSON-ready
data; ``render_*`` turn that data into text. ``herald_tools.cli`` wires them to the command line.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from botocore.exceptions import ClientError

from herald.content.limits import rejected_names
from herald.content.models import Outcome, OutcomeStatus
from herald.ingest.events import REPROCESS_MARKER
from herald_tools.stack import StackError, Target

Progress = Callable[[str], None]

QUEUE_URL_SUFFIX = "QueueUrl"
DLQ_URL_SUFFIX = "DeadLetterQueueUrl"
DEPTH_ATTRIBUTES = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
OUTCOME_FIELDS = (
    "key",
    "status",
    "community",
    "detail",
    "errors",
    "post_ids",
    "variant",
    "warnings",
    "duplicate_of",
    "counts",
    "sequencer",
    "version_id",
    "event_time",
    "processed_at",
    "rejected_copy",
    "correlation_id",
)
#: Seconds a message received for a redrive stays hidden from others while it is being moved.
REDRIVE_VISIBILITY = 120
#: Sequencer of a reprocess for a key with no recorded outcome: lower than any S3 sends.
NO_SEQUENCER = "0"
REPROCESS_PREFIXES = ("posts/", "exports/")
_SAMPLES = 5


def _progress_none(_message: str) -> None:
    return None


# -- durations and times ---------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``, ``1w`` (a bare number is seconds)."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return timedelta(seconds=float(value))
    parts = _DURATION.findall(value)
    if not parts or _DURATION.sub("", value).strip():
        raise ValueError(f"not a duration: {text!r} (try 30m, 2h, 1d, 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def _short_time(text: str | None) -> str:
    return text.replace("T", " ")[:19] + "Z" if text else "-"


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


# -- queues ----------------------------------------------------------------------------------------


def stack_queues(target: Target) -> list[dict[str, Any]]:
    """Every queue the stack names: Outputs ending in QueueUrl (and the local cloud's own list)."""
    queues: dict[str, dict[str, Any]] = {}
    for key, url in sorted(target.outputs.items()):
        if key.endswith(QUEUE_URL_SUFFIX) and url:
            queues[url] = {
                "output": key,
                "name": _queue_name(url),
                "url": url,
                "dead_letter": key.endswith(DLQ_URL_SUFFIX),
            }
    for key, value in sorted(target.local_info.items()):
        if isinstance(value, str) and key.endswith(("_queue_url", "_dlq_url")) and value not in queues:
            queues[value] = {
                "output": key,
                "name": _queue_name(value),
                "url": value,
                "dead_letter": key.endswith("_dlq_url"),
            }
    return list(queues.values())


def queue_depths(target: Target) -> list[dict[str, Any]]:
    sqs = target.client("sqs")
    rows = []
    for queue in stack_queues(target):
        try:
            attrs = sqs.get_queue_attributes(
                QueueUrl=queue["url"], AttributeNames=list(DEPTH_ATTRIBUTES.values())
            )["Attributes"]
        except ClientError as exc:
            rows.append({**queue, "error": _describe(exc)})
            continue
        rows.append({**queue, **{k: int(attrs.get(a, 0)) for k, a in DEPTH_ATTRIBUTES.items()}})
    return rows


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _redrive_target(sqs: Any, url: str) -> str | None:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = attrs.get("RedrivePolicy")
    return str(json.loads(policy)["deadLetterTargetArn"]) if policy else None


def resolve_redrive(target: Target, queue: str, to: str | None = None) -> tuple[str, str]:
    """(dead-letter queue URL, source queue URL) for a logical name like ``ingest`` or a DLQ URL."""
    sqs = target.client("sqs")
    queues = stack_queues(target)
    if queue.startswith(("http://", "https://")):
        dlq = queue
    else:
        wanted = re.sub(r"[^a-z0-9]", "", queue.lower())
        for suffix in ("deadletterqueueurl", "deadletterqueue", "dlq"):
            wanted = wanted.removesuffix(suffix)
        matches = [
            q["url"]
            for q in queues
            if q["dead_letter"]
            and (q["output"][: -len(DLQ_URL_SUFFIX)].lower() == wanted or q["name"].lower() == queue.lower())
        ]
        if not matches:
            known = ", ".join(
                q["output"][: -len(DLQ_URL_SUFFIX)].lower()
                for q in queues
                if q["dead_letter"] and q["output"].endswith(DLQ_URL_SUFFIX)
            )
            raise StackError(
                f"{target.where} has no dead-letter queue named {queue!r} (known: {known or 'none'})"
            )
        dlq = matches[0]
    if to:
        return dlq, to
    try:
        dlq_arn = _queue_arn(sqs, dlq)
    except ClientError as exc:
        raise StackError(f"cannot read {dlq}: {_describe(exc)}") from None
    sources = []
    for q in queues:
        if q["url"] != dlq and _redrive_target(sqs, q["url"]) == dlq_arn:
            sources.append(q["url"])
    if not sources:
        try:
            sources = list(sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", []))
        except ClientError:
            sources = []
    if not sources:
        own = _redrive_target(sqs, dlq)
        if own:
            raise StackError(
                f"{_queue_name(dlq)} is not a dead-letter queue: its own DLQ is {own.rsplit(':', 1)[-1]}"
            )
        raise StackError(
            f"no queue sends its failures to {_queue_name(dlq)}; name the destination with --to URL"
        )
    if len(sources) > 1:
        names = ", ".join(sources)
        raise StackError(
            f"several queues send their failures to {_queue_name(dlq)} ({names}); choose one with --to"
        )
    return dlq, sources[0]


# -- outcomes --------------------------------------------------------------------------------------


def outcome_data(outcome: Outcome, bucket: str | None) -> dict[str, Any]:
    data = outcome.model_dump(mode="json", include=set(OUTCOME_FIELDS))
    data["event_time"] = _iso(outcome.event_time)
    data["processed_at"] = _iso(outcome.processed_at)
    if outcome.status is OutcomeStatus.REJECTED and bucket:
        data["rejected_copy_url"] = (
            f"s3://{bucket}/{outcome.rejected_copy}" if outcome.rejected_copy else None
        )
        data["error_report_url"] = f"s3://{bucket}/{rejected_names(outcome.key)[1]}"
    return data


def _newest_outcomes(target: Target) -> Iterator[Outcome]:
    return iter(target.content_store().outcomes())


def recent_outcomes(
    target: Target, limit: int = 10, window: timedelta = timedelta(hours=1), now: datetime | None = None
) -> dict[str, Any]:
    """The last ``limit`` outcomes, and counts by status over ``window`` (one pass, newest first)."""
    cutoff = (now or datetime.now(UTC)) - window
    recent: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    bucket = target.outputs.get("UploadsBucketName")
    for outcome in _newest_outcomes(target):
        in_window = outcome.processed_at >= cutoff
        if len(recent) < limit:
            recent.append(outcome_data(outcome, bucket))
        if in_window:
            counts[str(outcome.status)] += 1
        elif len(recent) >= limit:
            break
    return {
        "recent": recent,
        "window_s": int(window.total_seconds()),
        "by_status": dict(sorted(counts.items())),
    }


def outcome(target: Target, key: str) -> dict[str, Any] | None:
    found = target.content_store().outcome(key)
    return outcome_data(found, target.outputs.get("UploadsBucketName")) if found else None


def rejected(target: Target, since: timedelta | None, now: datetime | None = None) -> dict[str, Any]:
    cutoff = (now or datetime.now(UTC)) - since if since is not None else None
    bucket = target.outputs.get("UploadsBucketName")
    found = []
    for item in _newest_outcomes(target):
        if cutoff is not None and item.processed_at < cutoff:
            break
        if item.status is OutcomeStatus.REJECTED:
            found.append(outcome_data(item, bucket))
    return {"since_s": int(since.total_seconds()) if since is not None else None, "rejected": found}


# -- alarms ----------------------------------------------------------------------------------------


def firing_alarms(target: Target) -> list[dict[str, Any]]:
    """The stack's CloudWatch alarms in ALARM: named ``<stack>-…`` or named in the Outputs."""
    cloudwatch = target.client("cloudwatch")
    named = {v for k, v in target.outputs.items() if k.endswith(("Alarm", "AlarmName", "AlarmArn"))}
    prefix = f"{target.stack_name}-"
    found = []
    paginator = cloudwatch.get_paginator("describe_alarms")
    for page in paginator.paginate(StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            name, arn = alarm.get("AlarmName", ""), alarm.get("AlarmArn", "")
            if not (name.startswith(prefix) or name in named or arn in named):
                continue
            updated = alarm.get("StateUpdatedTimestamp")
            found.append(
                {
                    "name": name,
                    "description": alarm.get("AlarmDescription"),
                    "reason": alarm.get("StateReason"),
                    "since": _iso(updated) if isinstance(updated, datetime) else updated,
                }
            )
    return found


# -- status ----------------------------------------------------------------------------------------


def status(target: Target, limit: int = 10, window: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    queues = queue_depths(target)
    alarms = firing_alarms(target)
    problems = []
    for q in queues:
        if "error" in q:
            problems.append(f"{q['name']}: {q['error']}")
        elif q["dead_letter"] and (q["visible"] + q["in_flight"] + q["delayed"]):
            total = q["visible"] + q["in_flight"] + q["delayed"]
            problems.append(f"{q['name']} holds {total} message(s)")
    problems += [f"alarm {a['name']} is in ALARM" for a in alarms]
    return {
        "where": target.where,
        "stack": target.stack_name,
        "queues": queues,
        "outcomes": recent_outcomes(target, limit, window),
        "alarms": alarms,
        "problems": problems,
        "healthy": not problems,
    }


# -- redrive ---------------------------------------------------------------------------------------


def summarise_body(body: str) -> str:
    """One line about a message: for an S3 event its event name and key."""
    try:
        document = json.loads(body)
    except ValueError:
        return _clip(body)
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return f"s3:TestEvent ({document.get('Bucket', '?')})"
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        parts = []
        for record in document["Records"]:
            try:
                key = unquote_plus(record["s3"]["object"]["key"])
                parts.append(
                    f"{record.get('eventName', '?')} {key} (bucket {record['s3']['bucket']['name']})"
                )
            except (KeyError, TypeError):
                parts.append(_clip(json.dumps(record)))
        marker = " [reprocess]" if document.get(REPROCESS_MARKER) is True else ""
        return "; ".join(parts) + marker
    return _clip(body)


def _clip(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _message_attributes(message: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attr: dict[str, Any] = {"DataType": value["DataType"]}
        if "StringValue" in value:
            attr["StringValue"] = value["StringValue"]
        elif "BinaryValue" in value:
            attr["BinaryValue"] = value["BinaryValue"]
        else:
            continue
        out[name] = attr
    return out


def _entry(index: int, message: dict[str, Any], fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = _message_attributes(message)
    if attributes:
        entry["MessageAttributes"] = attributes
    if fifo:
        system = message.get("Attributes") or {}
        entry["MessageGroupId"] = system.get("MessageGroupId", "redrive")
        entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId", message["MessageId"])
    return entry


def _depth(sqs: Any, url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES.values()))
    return {k: int(attrs["Attributes"].get(a, 0)) for k, a in DEPTH_ATTRIBUTES.items()}


def redrive(
    target: Target,
    queue: str,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    portable: bool = False,
    to: str | None = None,
    wait_s: float = 600.0,
    progress: Progress = _progress_none,
) -> dict[str, Any]:
    """Move the messages of a dead-letter queue back to the queue that feeds it."""
    sqs = target.client("sqs")
    dlq, source = resolve_redrive(target, queue, to)
    depth = _depth(sqs, dlq)
    result: dict[str, Any] = {
        "dead_letter_queue": dlq,
        "source_queue": source,
        "from": _queue_name(dlq),
        "to": _queue_name(source),
        "dry_run": dry_run,
        "waiting": depth["visible"],
        "in_flight": depth["in_flight"],
        "moved": 0,
        "failed": [],
        "not_deleted": [],
    }
    if dry_run:
        result["samples"] = _peek(sqs, dlq, min(_SAMPLES, max_messages or _SAMPLES))
        result["would_move"] = (
            depth["visible"] if max_messages is None else min(depth["visible"], max_messages)
        )
        return result
    native = not (target.is_local or portable or max_messages is not None)
    if native and hasattr(sqs, "start_message_move_task"):
        try:
            result.update(_move_native(sqs, dlq, source, wait_s, progress))
            result["method"] = "native"
            return result
        except ClientError as exc:
            if _code(exc) not in {"UnsupportedOperation", "InvalidAction", "UnknownOperationException"}:
                raise StackError(
                    f"SQS refused the message move task ({_describe(exc)}); try --portable"
                ) from None
            progress(
                f"SQS has no message move task here ({_code(exc)}): moving the messages one batch at a time"
            )
    result.update(_move_portable(sqs, dlq, source, max_messages, depth["visible"], progress))
    result["method"] = "portable"
    return result


def _peek(sqs: Any, dlq: str, count: int) -> list[dict[str, Any]]:
    """A few messages seen without taking them: received with a visibility timeout of 0."""
    if count <= 0:
        return []
    messages = sqs.receive_message(
        QueueUrl=dlq,
        MaxNumberOfMessages=min(10, count),
        VisibilityTimeout=0,
        WaitTimeSeconds=1,
        AttributeNames=["All"],
    ).get("Messages", [])
    samples = []
    for m in messages[:count]:
        sent = (m.get("Attributes") or {}).get("SentTimestamp")
        samples.append(
            {
                "message_id": m["MessageId"],
                "summary": summarise_body(m["Body"]),
                "sent_at": _iso(datetime.fromtimestamp(int(sent) / 1000, UTC)) if sent else None,
            }
        )
    return samples


def _move_native(sqs: Any, dlq: str, source: str, wait_s: float, progress: Progress) -> dict[str, Any]:
    dlq_arn, source_arn = _queue_arn(sqs, dlq), _queue_arn(sqs, source)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)["TaskHandle"]
    progress(f"started SQS message move task {handle}")
    deadline = time.monotonic() + wait_s
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results", [])
        task = tasks[0] if tasks else {}
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        total = task.get("ApproximateNumberOfMessagesToMove")
        progress(f"moved {moved}/{total if total is not None else '?'}")
        if task.get("Status") in {"COMPLETED", "CANCELLED", "FAILED"}:
            failed = [{"reason": task.get("FailureReason")}] if task.get("Status") != "COMPLETED" else []
            return {"moved": moved, "failed": failed, "task_handle": handle, "task_status": task["Status"]}
        if time.monotonic() > deadline:
            return {"moved": moved, "task_handle": handle, "task_status": task.get("Status", "RUNNING")}
        time.sleep(2)  # the task's progress is only observable by asking again


def _move_portable(
    sqs: Any, dlq: str, source: str, max_messages: int | None, total: int, progress: Progress
) -> dict[str, Any]:
    """Receive from the DLQ, send to the source, delete from the DLQ only what was sent."""
    fifo = source.endswith(".fifo")
    goal = total if max_messages is None else min(total, max_messages)
    seen: set[str] = set()
    moved = 0
    failed: list[dict[str, Any]] = []
    not_deleted: list[dict[str, Any]] = []
    held: list[dict[str, str]] = []  # failed sends: released at the end so they wait in the DLQ again
    while max_messages is None or moved + len(failed) < max_messages:
        want = 10 if max_messages is None else min(10, max_messages - moved - len(failed))
        messages = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=want,
            WaitTimeSeconds=1,
            VisibilityTimeout=REDRIVE_VISIBILITY,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            held += [{"MessageId": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in messages]
            break
        seen.update(m["MessageId"] for m in fresh)
        response = sqs.send_message_batch(
            QueueUrl=source, Entries=[_entry(i, m, fifo) for i, m in enumerate(fresh)]
        )
        sent_ids = {e["Id"] for e in response.get("Successful", [])}
        errors = {e["Id"]: e for e in response.get("Failed", [])}
        to_delete = []
        for i, message in enumerate(fresh):
            if str(i) in sent_ids:
                to_delete.append({"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]})
                continue
            error = errors.get(str(i), {"Code": "Unknown", "Message": "not in the batch result"})
            failed.append(
                {
                    "message_id": message["MessageId"],
                    "summary": summarise_body(message["Body"]),
                    "code": error.get("Code"),
                    "reason": error.get("Message"),
                    "sender_fault": error.get("SenderFault"),
                }
            )
            held.append({"MessageId": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
        if to_delete:
            deleted = sqs.delete_message_batch(QueueUrl=dlq, Entries=to_delete)
            for error in deleted.get("Failed", []):
                message = fresh[int(error["Id"])]
                not_deleted.append(
                    {
                        "message_id": message["MessageId"],
                        "code": error.get("Code"),
                        "reason": error.get("Message"),
                    }
                )
        moved += len(sent_ids)
        progress(f"moved {moved}/{goal}" + (f", {len(failed)} failed" if failed else ""))
    for start in range(0, len(held), 10):
        batch = held[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=dlq,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, h in enumerate(batch)
            ],
        )
    return {"moved": moved, "failed": failed, "not_deleted": not_deleted}


# -- reprocess -------------------------------------------------------------------------------------


def reprocess_message(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    sequencer: str,
    region: str,
    event_time: datetime | None = None,
) -> str:
    """The body of an S3 ``ObjectCreated:Put`` notification for this object, marked as a reprocess."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')}
    if version_id:
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso(event_time or datetime.now(UTC)),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "herald-reprocess"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "herald-reprocess",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": ""}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    return json.dumps({"Records": [record], REPROCESS_MARKER: True}, ensure_ascii=False)


def _listing(s3: Any, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def reprocess(
    target: Target, prefix: str, *, dry_run: bool = False, progress: Progress = _progress_none
) -> dict[str, Any]:
    """Send every object under ``prefix`` through ingest again, as reprocess events.

    Each event carries the object's current version and the sequencer of its recorded outcome
    (or the lowest sequencer when there is none), so ingest runs it only while that outcome is
    still the latest word on the key: a newer upload or delete, processed or still queued, wins.
    """
    if prefix in ("posts", "exports"):
        prefix += "/"
    if not prefix.startswith(REPROCESS_PREFIXES):
        raise StackError(f"reprocess works under posts/ and exports/ (what ingest reads), not {prefix!r}")
    s3, sqs, store = target.client("s3"), target.client("sqs"), target.content_store()
    bucket, queue = target.output("UploadsBucketName"), target.output("IngestQueueUrl")
    listed = list(_listing(s3, bucket, prefix))
    total = len(listed)
    items: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], str]] = []
    failed: list[dict[str, Any]] = []

    def flush() -> None:
        if not pending:
            return
        entries = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(pending)]
        response = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        errors = {e["Id"]: e for e in response.get("Failed", [])}
        sent = {e["Id"] for e in response.get("Successful", [])}
        for i, (item, _) in enumerate(pending):
            if str(i) in sent:
                item["action"] = "sent"
            else:
                error = errors.get(str(i), {"Code": "Unknown", "Message": "not in the batch result"})
                item["action"] = "failed"
                item["reason"] = f"{error.get('Code')}: {error.get('Message')}"
                failed.append(item)
        pending.clear()

    for n, listed_object in enumerate(listed, 1):
        key = listed_object["Key"]
        item: dict[str, Any] = {"key": key}
        items.append(item)
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            item.update(action="skipped", reason=f"gone since the listing ({_code(exc)})")
            progress(f"reprocess {n}/{total}: {key}: skipped")
            continue
        version_id = head.get("VersionId")
        version_id = None if version_id in (None, "", "null") else version_id
        recorded = store.outcome(key)
        item["version_id"] = version_id
        if recorded is not None and recorded.version_id != version_id:
            item.update(
                action="skipped",
                reason=(
                    f"its outcome is for version {recorded.version_id}, the object is at {version_id}: "
                    "that version's own event is still to come (or was lost: upload the object again)"
                ),
            )
            progress(f"reprocess {n}/{total}: {key}: skipped")
            continue
        sequencer = (recorded.sequencer if recorded is not None else None) or NO_SEQUENCER
        item["sequencer"] = sequencer
        item["recorded_status"] = str(recorded.status) if recorded is not None else None
        if dry_run:
            item["action"] = "would send"
        else:
            body = reprocess_message(
                bucket=bucket,
                key=key,
                size=int(head.get("ContentLength", listed_object.get("Size", 0))),
                etag=str(head.get("ETag", listed_object.get("ETag", ""))),
                version_id=version_id,
                sequencer=sequencer,
                region=target.region,
            )
            pending.append((item, body))
            if len(pending) == 10:
                flush()
        progress(f"reprocess {n}/{total}: {key}")
    flush()
    counts = Counter(i["action"] for i in items)
    return {
        "prefix": prefix,
        "bucket": bucket,
        "queue": _queue_name(queue),
        "dry_run": dry_run,
        "objects": total,
        "sent": counts.get("sent", 0),
        "would_send": counts.get("would send", 0),
        "skipped": counts.get("skipped", 0),
        "failed": len(failed),
        "items": items,
    }


# -- errors ----------------------------------------------------------------------------------------


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".rstrip(": ")


# -- text ------------------------------------------------------------------------------------------


def render_status(data: dict[str, Any]) -> str:
    lines = [f"Herald on {data['where']}", ""]
    width = max([len(q["name"]) + 6 for q in data["queues"]] + [20])
    lines.append(f"{'queue':<{width}} {'visible':>8} {'in flight':>10} {'delayed':>8}")
    for q in data["queues"]:
        label = q["name"] + (" (DLQ)" if q["dead_letter"] else "")
        if "error" in q:
            lines.append(f"{label:<{width}} {q['error']}")
            continue
        note = ""
        if q["dead_letter"] and q["visible"] + q["in_flight"] + q["delayed"]:
            logical = q["output"].removesuffix(DLQ_URL_SUFFIX).lower() or q["url"]
            note = f"   ← herald redrive {logical} (after fixing the cause)"
        lines.append(f"{label:<{width}} {q['visible']:>8} {q['in_flight']:>10} {q['delayed']:>8}{note}")
    outcomes = data["outcomes"]
    lines.append("")
    window = _human_duration(outcomes["window_s"])
    counts = ", ".join(f"{n} {s}" for s, n in outcomes["by_status"].items()) or "none"
    lines.append(f"Outcomes in the last {window}: {counts}")
    if outcomes["recent"]:
        lines.append(f"Last {len(outcomes['recent'])} (newest first):")
        for o in outcomes["recent"]:
            lines.append(f"  {_short_time(o['processed_at'])}  {o['status']:<9} {o['key']}")
    lines.append("")
    if data["alarms"]:
        lines.append("Alarms in ALARM:")
        for a in data["alarms"]:
            lines.append(f"  ✗ {a['name']} (since {_short_time(a['since'])}): {a.get('description') or ''}")
            if a.get("reason"):
                lines.append(f"      {a['reason']}")
    else:
        lines.append("Alarms: none in ALARM")
    lines.append("")
    lines.append("OK" if data["healthy"] else "Needs attention: " + "; ".join(data["problems"]))
    return "\n".join(lines)


def _human_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            n = seconds // size
            return {"h": "hour", "d": "day", "m": "minute"}[unit] if n == 1 else f"{n}{unit}"
    return f"{seconds}s"


def render_outcome(data: dict[str, Any]) -> str:
    lines = [data["key"]]

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"  {label + ':':<14} {value}")

    row("status", data["status"])
    row("community", data.get("community"))
    row("detail", data.get("detail"))
    for error in data.get("errors") or []:
        lines.append(f"  {'error:':<14} ✗ {error.get('loc')}: {error.get('message')}")
    row("post ids", ", ".join(data.get("post_ids") or []))
    row("variant", data.get("variant"))
    for warning in data.get("warnings") or []:
        lines.append(f"  {'warning:':<14} ! {warning}")
    row("duplicate of", data.get("duplicate_of"))
    if data.get("counts"):
        row("counts", ", ".join(f"{k} {v}" for k, v in data["counts"].items()))
    row("event time", data.get("event_time"))
    row("processed at", data.get("processed_at"))
    row("sequencer", data.get("sequencer"))
    row("correlation id", data.get("correlation_id"))
    row("version id", data.get("version_id"))
    row("rejected copy", data.get("rejected_copy_url") or data.get("rejected_copy"))
    row("error report", data.get("error_report_url"))
    return "\n".join(lines)


def render_rejected(data: dict[str, Any]) -> str:
    since = f" in the last {_human_duration(data['since_s'])}" if data.get("since_s") else ""
    if not data["rejected"]:
        return f"No rejected uploads{since}."
    lines = [f"{len(data['rejected'])} rejected upload(s){since}, newest first:"]
    for o in data["rejected"]:
        lines.append(f"  {_short_time(o['processed_at'])}  {o['key']}")
        for error in o.get("errors") or []:
            lines.append(f"      ✗ {error.get('loc')}: {error.get('message')}")
        if not o.get("errors") and o.get("detail"):
            lines.append(f"      ✗ {o['detail']}")
        if o.get("rejected_copy_url"):
            lines.append(f"      original: {o['rejected_copy_url']}")
    return "\n".join(lines)


def render_redrive(data: dict[str, Any]) -> str:
    lines = []
    if data["dry_run"]:
        lines.append(
            f"dry run: would move {data['would_move']} message(s) from {data['from']} to {data['to']}"
            + (f" ({data['in_flight']} more in flight)" if data["in_flight"] else "")
        )
        for sample in data.get("samples", []):
            lines.append(f"  • {sample['summary']}")
        return "\n".join(lines)
    lines.append(f"moved {data['moved']} message(s) from {data['from']} to {data['to']}")
    if data.get("task_status") and data["task_status"] != "COMPLETED":
        lines.append(f"  the SQS move task {data.get('task_handle')} is {data['task_status']}")
    for failure in data["failed"]:
        what = failure.get("summary") or failure.get("message_id") or ""
        lines.append(f"  ✗ not moved: {what} ({failure.get('code')}: {failure.get('reason')})".rstrip())
    for failure in data["not_deleted"]:
        lines.append(
            f"  ! sent but still in the DLQ: {failure['message_id']} ({failure.get('code')}); "
            "a later redrive sends it again, which ingest ignores"
        )
    return "\n".join(lines)


def render_reprocess(data: dict[str, Any]) -> str:
    where = f"s3://{data['bucket']}/{data['prefix']}"
    what = f"of {data['objects']} object(s) under {where} to {data['queue']}"
    if data["dry_run"]:
        head = f"dry run: would send {data['would_send']} {what}"
    else:
        head = f"sent {data['sent']} {what} for reprocessing"
    tail = []
    if data["skipped"]:
        tail.append(f"{data['skipped']} skipped")
    if data["failed"]:
        tail.append(f"{data['failed']} failed")
    lines = [head + (f" ({', '.join(tail)})" if tail else "")]
    for item in data["items"]:
        if item["action"] in ("skipped", "failed"):
            lines.append(f"  {item['action']}: {item['key']}: {item.get('reason')}")
    if data["sent"]:
        lines.append(
            "Ingest runs each again while its recorded version is current; same content keeps its version. "
            "Follow with `herald status`."
        )
    return "\n".join(lines)
