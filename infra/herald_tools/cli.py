"""The ``herald`` command line.

- ``herald local``: the whole system on this machine (moto plus Herald's own functions), until Ctrl-C;
- ``herald demo``: start it, upload posts and exports, wait until they are processed, report, exit;
- ``herald report``: what a running system holds;
- ``herald status``, ``outcome``, ``rejected``, ``redrive``, ``reprocess``: operations on a running
  Herald, a stack on AWS (``--stack``) or the local cloud (``--endpoint-url``); see docs/runbook.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from herald_tools.stack import DEFAULT_ENDPOINT, OUTPUTS_PARAMETER, Target, resolve
from herald_tools.terminal import inert, inert_json, inert_tree

DEFAULT_PORT = 4566
DEFAULT_API_PORT = 3000
DEFAULT_SITE_PORT = 8080
SAMPLE_COMMUNITY = "harbour-line"


def _repo_root() -> Path:
    """The checkout holding template.yaml and functions/ (the local cloud runs them from there)."""
    env = os.environ.get("HERALD_HOME")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / "template.yaml").is_file() and (candidate / "functions").is_dir():
            return candidate
    raise SystemExit("herald: cannot find template.yaml; run from the Herald checkout or set HERALD_HOME")


def _print_err(message: str) -> None:
    """One line on stderr; the keys and messages in it are shown inert (see herald_tools.terminal)."""
    print(inert(message), file=sys.stderr, flush=True)


# -- herald local ------------------------------------------------------------------------------------


def cmd_local(args: argparse.Namespace) -> int:
    from herald_tools.localcloud.cloud import LocalCloud

    root = _repo_root()
    cloud = LocalCloud(root / "template.yaml", project_root=root, logs=args.logs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with cloud:
        cloud.start(port=args.port, api_port=args.api_port, site_port=args.site_port)
        _publish_outputs(cloud)
        info = cloud.ready_info()
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Herald's local cloud is up at {info['endpoint_url']}", flush=True)
            if info.get("api_url"):
                print(f"  API: {info['api_url']} (no stage prefix)", flush=True)
            if info.get("site_url"):
                print(f"  public site: {info['site_url']}/<community>/", flush=True)
            print(f"  uploads bucket: {info['uploads_bucket']}", flush=True)
            print(
                f"  try: aws --endpoint-url {info['endpoint_url']} s3 cp post.txt "
                f"s3://{info['uploads_bucket']}/posts/my-community/post.txt",
                flush=True,
            )
            print(f"       herald report --endpoint-url {info['endpoint_url']}", flush=True)
            print("Ctrl-C stops it.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def _publish_outputs(cloud: Any) -> None:
    """Leave the resource names where ``herald report --endpoint-url`` finds them."""
    ssm = cloud.client("ssm")
    ssm.put_parameter(
        Name=OUTPUTS_PARAMETER, Value=json.dumps(cloud.ready_info()), Type="String", Overwrite=True
    )


# -- herald report -----------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Target:
    return resolve(stack=args.stack, endpoint_url=args.endpoint_url, profile=args.profile, region=args.region)


def _emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    """``data`` as JSON (``--json``) or as ``render`` writes it, either way inert on a terminal.

    The text renderers get ``data`` with every string already made inert, so no key, title or
    message can add a line, move the cursor or reorder the text, whatever renderer shows it.
    """
    print(inert_json(data) if args.json else render(inert_tree(data)), flush=True)


def cmd_report(args: argparse.Namespace) -> int:
    from herald_tools.report import build_report, render_text

    target = _target(args)
    report = build_report(
        target.content_store(), members=target.member_store(), deliveries=target_deliveries(target)
    )
    _emit(args, report, render_text)
    return 0


def target_deliveries(target: Target) -> Any:
    """The deliveries table of ``target`` (per-post push statistics); None for a stack without one."""
    from herald.adapters.dynamo_deliveries import DynamoDeliveryLedger

    if "DeliveriesTableName" not in target.outputs:
        return None
    return DynamoDeliveryLedger(target.outputs["DeliveriesTableName"], target.client("dynamodb"))


# -- operations --------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from herald_tools import ops

    data = ops.status(_target(args), limit=args.limit, window=args.window)
    _emit(args, data, ops.render_status)
    return 1 if args.check and not data["healthy"] else 0


def cmd_outcome(args: argparse.Namespace) -> int:
    from herald_tools import ops

    target = _target(args)
    data = ops.outcome(target, args.key)
    if data is None:
        _print_err(
            f"herald: no outcome recorded for {args.key!r} on {target.where} "
            "(keys are exact and case-sensitive; `herald status` lists the latest)"
        )
        return 1
    _emit(args, data, ops.render_outcome)
    return 0


def cmd_rejected(args: argparse.Namespace) -> int:
    from herald_tools import ops

    data = ops.rejected(_target(args), since=args.since)
    _emit(args, data, ops.render_rejected)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    from herald_tools import ops

    progress = _print_err if not args.quiet else (lambda _m: None)
    data = ops.redrive(
        _target(args),
        args.queue,
        dry_run=args.dry_run,
        max_messages=args.max,
        portable=args.portable,
        to=args.to,
        progress=progress,
    )
    _emit(args, data, ops.render_redrive)
    return 1 if data["failed"] else 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    from herald_tools import ops

    progress = _print_err if not args.quiet else (lambda _m: None)
    data = ops.reprocess(_target(args), args.prefix, dry_run=args.dry_run, progress=progress)
    _emit(args, data, ops.render_reprocess)
    return 1 if data["failed"] else 0


def cmd_vapid_keys(args: argparse.Namespace) -> int:
    """A new VAPID key pair: the private key stored as an SSM SecureString (with --put), or printed."""
    from herald.push.vapid import generate_vapid_key, private_key_pem, public_key_b64

    key = generate_vapid_key()
    public = public_key_b64(key.public_key())
    data: dict[str, Any] = {"public_key": public, "parameter": args.put}
    if args.put:
        # No stack needed: the key is made before the first deploy. Locally, only with --endpoint-url.
        if args.endpoint_url:
            ssm = resolve(endpoint_url=args.endpoint_url).client("ssm")
        else:
            import boto3

            ssm = boto3.Session(profile_name=args.profile, region_name=args.region).client("ssm")
        ssm.put_parameter(
            Name=args.put,
            Value=private_key_pem(key),
            Type="SecureString",
            Overwrite=args.overwrite,
            Description="Herald's VAPID private key (Web Push)",
        )
        text = f"stored the private key in SSM as SecureString {inert(args.put)}\npublic key: {public}"
    else:
        data["private_key_pem"] = private_key_pem(key)
        text = f"{data['private_key_pem']}public key: {public}"
    # Not _emit: the PEM's own line breaks must stay; nothing here comes from uploads.
    print(inert_json(data) if args.json else text, flush=True)
    return 0


def _duration(text: str) -> Any:
    from herald_tools.ops import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _target_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where Herald runs")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack on AWS (e.g. herald-dev)")
    where.add_argument("--profile", help="AWS profile (with --stack)")
    where.add_argument("--region", help="AWS region (with --stack; default: the profile's)")
    where.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=f"the local cloud (default {DEFAULT_ENDPOINT} when no --stack is given)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    return common


# -- herald demo -------------------------------------------------------------------------------------


def _sample_files() -> tuple[list[Path], list[Path]]:
    samples = Path(__file__).resolve().parent / "samples"
    posts = sorted(p for p in (samples / "posts").iterdir() if p.is_file())
    return posts, [samples / "community-export.txt"]


def cmd_demo(args: argparse.Namespace) -> int:
    from herald_tools.localcloud.cloud import LocalCloud
    from herald_tools.report import build_report, render_text

    posts = [Path(p) for p in args.files]
    exports = [Path(p) for p in args.export]
    community = args.community
    if not posts and not exports:
        posts, exports = _sample_files()
        community = community or SAMPLE_COMMUNITY
    community = community or "demo"
    for path in (*posts, *exports):
        if not path.is_file():
            raise SystemExit(f"herald demo: no such file: {path}")
    root = _repo_root()
    progress = _print_err if not args.quiet else (lambda _m: None)
    logs = args.logs or tempfile.mkstemp(prefix="herald-demo-", suffix=".log")[1]
    with LocalCloud(root / "template.yaml", project_root=root, logs=logs) as cloud:
        progress("starting the local cloud…")
        cloud.start(port=args.port, api_port=0, site_port=0)
        _publish_outputs(cloud)
        info = cloud.ready_info()
        s3 = cloud.client("s3")
        keys = [f"posts/{community}/{p.name}" for p in posts] + [
            f"exports/{community}/{p.name}" for p in exports
        ]
        uploads = list(zip((*posts, *exports), keys, strict=True))
        target = resolve(endpoint_url=info["endpoint_url"])
        store = target.content_store()
        subscribers = None
        if args.subscribers:
            # The community exists (its export is in) before members join; the posts come after them.
            first = [(p, k) for p, k in uploads if k.startswith("exports/")]
            if not first:
                raise SystemExit("herald demo: --subscribers needs an --export (the community members join)")
            for path, key in first:
                s3.put_object(Bucket=info["uploads_bucket"], Key=key, Body=path.read_bytes())
            _wait_for_outcomes(cloud, store, [k for _, k in first], progress, timeout=args.timeout)
            from herald_tools.push_demo import join_subscribers

            progress(f"joining {args.subscribers} push subscriber(s) through {info['api_url']}…")
            subscribers = join_subscribers(
                info["api_url"],
                cloud.push_service,
                cloud.vapid_public_key,
                community,
                args.subscribers,
                random.Random(args.seed),
            )
            uploads = [(p, k) for p, k in uploads if (p, k) not in first]
        for path, key in uploads:
            s3.put_object(Bucket=info["uploads_bucket"], Key=key, Body=path.read_bytes())
        progress(f"uploaded {len(keys)} object(s) to s3://{info['uploads_bucket']}/")
        _wait_for_outcomes(cloud, store, keys, progress, timeout=args.timeout)
        simulation = None
        if args.members:
            from herald_tools.members_sim import simulate_members

            progress(f"joining {args.members} simulated member(s) through {info['api_url']}…")
            simulation = simulate_members(info["api_url"], community, args.members, random.Random(args.seed))
            cloud.wait_until_idle(timeout=args.timeout)
        report = build_report(store, members=target.member_store(), deliveries=target_deliveries(target))
        if subscribers is not None:
            from herald_tools.push_demo import push_report

            report["push_service"] = push_report(cloud.push_service, subscribers, report["posts"])
        if simulation is not None:
            report["members_simulation"] = simulation
        report["local_cloud"] = info
        site_bucket = info.get("outputs", {}).get("SiteBucketName")
        if site_bucket:
            site_dir = Path(args.site_dir).resolve()
            written = _download_site(cloud, site_bucket, site_dir)
            report["site_dir"] = str(site_dir)
            for name in sorted(written):
                progress(f"the public site of {name}: {site_dir / name / 'index.html'}")
    _emit(args, report, render_text)
    progress(f"the functions' logs are in {logs}")
    return 0


def _download_site(cloud: Any, bucket: str, target: Path) -> dict[str, int]:
    """Copy the site bucket into ``target`` (``<community>/...``); files per community."""
    s3 = cloud.client("s3")
    written: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            path = (target / key).resolve()
            if target not in path.parents:
                continue  # a key that would leave the directory
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            community = key.split("/", 1)[0]
            written[community] = written.get(community, 0) + 1
    return written


def _wait_for_outcomes(cloud: Any, store: Any, keys: Sequence[str], progress: Any, timeout: float) -> None:
    """Until every upload has an outcome and the functions are idle, showing progress meanwhile."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        done = {o.key for o in store.outcomes()} & set(keys)
        posts = sum(c.posts for c in store.communities())
        line = f"processed {len(done)}/{len(keys)} uploads, {posts} posts stored"
        if line != last:
            progress(line)
            last = line
        if len(done) == len(keys):
            cloud.wait_until_idle(timeout=max(1.0, deadline - time.monotonic()))
            return
        if time.monotonic() > deadline:
            missing = sorted(set(keys) - done)
            raise SystemExit(f"herald demo: timed out waiting for {', '.join(missing)}")
        cloud.wait_for_activity(timeout=0.25)


# -- entry point -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the whole system on this machine until Ctrl-C")
    local.add_argument("--port", type=int, default=DEFAULT_PORT, help="moto's port (default %(default)s)")
    local.add_argument(
        "--api-port",
        type=int,
        default=DEFAULT_API_PORT,
        help="the local API Gateway port, if the template has an API (default %(default)s; 0: any free port)",
    )
    local.add_argument(
        "--site-port",
        type=int,
        default=DEFAULT_SITE_PORT,
        help="the public site, served from the site bucket (default %(default)s; 0: any free port)",
    )
    local.add_argument("--json", action="store_true", help="first stdout line: one JSON object of endpoints")
    local.add_argument("--logs", metavar="FILE", help="write the functions' logs to FILE (default: stderr)")
    local.set_defaults(func=cmd_local)

    common = _target_options()
    report = sub.add_parser("report", parents=[common], help="what a running system holds")
    report.set_defaults(func=cmd_report)

    status = sub.add_parser(
        "status", parents=[common], help="queue depths, dead-letter queues, recent outcomes, alarms"
    )
    status.add_argument("--limit", type=_positive, default=10, help="recent outcomes shown (default 10)")
    status.add_argument(
        "--window", type=_duration, default="1h", help="counts by status over this duration (default 1h)"
    )
    status.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a dead-letter queue holds messages or an alarm fires",
    )
    status.set_defaults(func=cmd_status)

    outcome = sub.add_parser("outcome", parents=[common], help="what happened to one upload, and when")
    outcome.add_argument("key", help="the object key, e.g. posts/my-community/post.txt")
    outcome.set_defaults(func=cmd_outcome)

    rejected = sub.add_parser("rejected", parents=[common], help="rejected uploads and why, newest first")
    rejected.add_argument(
        "--since", type=_duration, default="24h", help="how far back (default 24h; e.g. 30m, 7d)"
    )
    rejected.set_defaults(func=cmd_rejected)

    redrive = sub.add_parser(
        "redrive", parents=[common], help="move dead-letter messages back to the queue they came from"
    )
    redrive.add_argument("queue", help="a logical name like `ingest`, or the dead-letter queue's URL")
    redrive.add_argument("--dry-run", action="store_true", help="count and show a few, move nothing")
    redrive.add_argument("--max", type=_positive, metavar="N", help="move at most N messages")
    redrive.add_argument(
        "--portable",
        action="store_true",
        help="receive, send and delete in batches instead of SQS's message move task (always so locally)",
    )
    redrive.add_argument("--to", metavar="URL", help="the destination queue, when it cannot be derived")
    redrive.add_argument("--quiet", action="store_true", help="no progress on stderr")
    redrive.set_defaults(func=cmd_redrive)

    reprocess = sub.add_parser(
        "reprocess", parents=[common], help="run the stored objects under a prefix through ingest again"
    )
    reprocess.add_argument("prefix", help="a prefix under posts/ or exports/, e.g. posts/my-community/")
    reprocess.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    reprocess.add_argument("--quiet", action="store_true", help="no progress on stderr")
    reprocess.set_defaults(func=cmd_reprocess)

    vapid = sub.add_parser(
        "vapid-keys", parents=[common], help="create the VAPID key pair Web Push signs with"
    )
    vapid.add_argument(
        "--put", metavar="NAME", help="store the private key as this SSM SecureString (else print it)"
    )
    vapid.add_argument("--overwrite", action="store_true", help="replace an existing parameter")
    vapid.set_defaults(func=cmd_vapid_keys)

    demo = sub.add_parser("demo", help="start the local cloud, upload, wait, report")
    demo.add_argument("files", nargs="*", help="posts to upload (.txt, .md, .json)")
    demo.add_argument("--export", action="append", default=[], metavar="FILE", help="a community page export")
    demo.add_argument("--community", help="community id for the uploads (default: demo)")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--port", type=int, default=0, help="moto's port (default: any free port)")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for processing")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.add_argument(
        "--site-dir", default="site", metavar="DIR", help="where the public site is written (default ./site)"
    )
    demo.add_argument(
        "--members",
        type=int,
        default=0,
        metavar="N",
        help="join N simulated members through the local API (some with preferences, some leaving)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the simulated members (default 0)")
    demo.add_argument(
        "--subscribers",
        type=int,
        default=0,
        metavar="N",
        help="N members with subscriptions of the local push service join before the posts; "
        "the report's push_service says what they received",
    )
    demo.add_argument("--logs", metavar="FILE", help="the functions' logs (default: a temporary file)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
