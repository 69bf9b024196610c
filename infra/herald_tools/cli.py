"""The ``herald`` command line.

- ``herald local``: the whole system on this machine (moto plus Herald's own functions), until Ctrl-C;
- ``herald demo``: start it, upload posts and exports, wait until they are processed, report, exit;
- ``herald report``: what a running system holds;
- ``herald status``, ``outcome``, ``rejected``, ``redrive``, ``reprocess``, ``republish``: operations
  on a running Herald, a stack on AWS (``--stack``) or the local cloud (``--endpoint-url``); see
  docs/runbook.md;
- ``herald teardown --stack NAME``: a deployed stack and everything it keeps, deleted (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shlex
import signal
import socket
import sys
import tempfile
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


PORT_FLAGS = (("port", "--port"), ("api_port", "--api-port"), ("site_port", "--site-port"))
EXIT_USAGE = 2  # as argparse exits on bad arguments: the command line has to change


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the same clean stop."""


def _interrupt(signum: int, _frame: Any) -> None:
    raise _Interrupted(signum)


def _wait_for_a_signal() -> None:
    """Block the main thread until a signal's handler raises (Ctrl-C, SIGTERM).

    The kernel hands a signal sent to the process to any thread that does not block it: a poller,
    a server, a worker's log reader. Python then runs the handler in the main thread, but only once
    that thread runs again, and a ``time.sleep`` there is not cut short. The wakeup fd (written by
    the signal's C handler, whichever thread it runs in) is what the main thread waits on instead.
    """
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        while True:  # the handler raises as soon as select returns to Python
            select.select([reader], [], [])
            with contextlib.suppress(BlockingIOError):
                reader.recv(512)
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def _port_taken(args: argparse.Namespace, port: int) -> int:
    flag = next((f for name, f in PORT_FLAGS if getattr(args, name, None) == port), "--port")
    _print_err(f"herald local: port {port} is in use ({flag} to choose another, 0 for any free port)")
    return EXIT_USAGE


def cmd_local(args: argparse.Namespace) -> int:
    """Run the local cloud until Ctrl-C or SIGTERM (either stops it cleanly, exit status 0)."""
    from herald_tools.ports import PortInUseError, port_in_use

    host = "127.0.0.1"
    fixed = [(getattr(args, name), flag) for name, flag in PORT_FLAGS if getattr(args, name)]
    seen: dict[int, str] = {}
    for port, flag in fixed:
        if port in seen:
            _print_err(f"herald local: {seen[port]} and {flag} are both {port}; give each its own port")
            return EXIT_USAGE
        seen[port] = flag
        # Checked before anything loads or starts, so a taken port fails within a moment.
        if port_in_use(host, port):
            return _port_taken(args, port)
    previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run_local(args)
    except PortInUseError as exc:  # taken between the check and the start
        return _port_taken(args, exc.port)
    except KeyboardInterrupt:  # stopped while starting: everything started is stopped again
        return 0
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _run_local(args: argparse.Namespace) -> int:
    from herald_tools.localcloud.cloud import LocalCloud

    root = _repo_root()
    if args.built is not None:
        from herald_tools.built import TWIN_DIR, TwinError

        try:
            cloud = LocalCloud(
                built=Path(args.built) if args.built else root / TWIN_DIR,
                logs=args.logs,
                concurrency=args.concurrency,
            )
        except TwinError as exc:
            _print_err(f"herald local --built: {exc}")
            return 1
    else:
        cloud = LocalCloud(
            root / "template.yaml", project_root=root, logs=args.logs, concurrency=args.concurrency
        )
    with cloud:
        try:
            cloud.start(port=args.port, api_port=args.api_port, site_port=args.site_port)
            _publish_outputs(cloud)
            info = cloud.ready_info()
            if args.json:
                print(json.dumps(info), flush=True)
            else:
                print(render_ready(info), flush=True)
            _wait_for_a_signal()  # until Ctrl-C or SIGTERM
        except KeyboardInterrupt:
            pass
        finally:
            # The stop that follows (leaving ``with``) must not be cut short by a second signal.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0


def export_line(env: dict[str, str]) -> str:
    """``export NAME=value ...`` for a POSIX shell."""
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())


def render_ready(info: dict[str, Any]) -> str:
    """The banner ``herald local`` prints once everything is up."""
    endpoint = info["endpoint_url"]
    lines = [f"Herald's local cloud is up at {endpoint} (region {info['region']})"]
    if info.get("api_url"):
        lines.append(f"  API: {info['api_url']} (no stage prefix needed; /docs is Swagger UI)")
    if info.get("site_url"):
        lines.append(f"  public site: {info['site_url']}/<community>/")
    lines.append(f"  uploads bucket: {info['uploads_bucket']}")
    if info.get("built"):
        built = info["built"]
        lines.append(
            f"  functions: the built artefacts in {built['dir']}, on {built['runtime']} ({built['python']})"
        )
    lines.append("  any credentials work; so that the AWS CLI and SDKs need no --endpoint-url or AWS setup:")
    lines.append(f"    {export_line(info['env'])}")
    lines.append(f"  try: aws s3 cp post.txt s3://{info['uploads_bucket']}/posts/my-community/post.txt")
    lines.append("       herald report")
    functions = info.get("functions") or {}
    if functions:
        first = "IngestFunction" if "IngestFunction" in functions else sorted(functions)[0]
        lines.append(f"       aws logs tail /aws/lambda/{functions[first]} --follow")
        lines.append(f"       herald invoke {first} --event event.json")
    lines.append("Ctrl-C (or SIGTERM) stops it.")
    return "\n".join(lines)


def _publish_outputs(cloud: Any) -> None:
    """Leave the resource names where ``herald report --endpoint-url`` finds them, and each
    function's configuration where ``herald invoke`` does."""
    from herald_tools.localcloud.invoke import publish_functions

    ssm = cloud.client("ssm")
    ssm.put_parameter(
        Name=OUTPUTS_PARAMETER, Value=json.dumps(cloud.ready_info()), Type="String", Overwrite=True
    )
    publish_functions(ssm, cloud.resources.functions, cloud.extra_env)


# -- herald invoke -----------------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    """One function, once, on the running local cloud: result on stdout, logs on stderr."""
    from herald_tools.localcloud.functions import LogSink
    from herald_tools.localcloud.invoke import UnknownFunction, error_document, find_function, invoke_once

    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
    except OSError as exc:
        _print_err(f"herald invoke: cannot read the event {args.event}: {exc.strerror}")
        return EXIT_USAGE
    try:
        event = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        _print_err(f"herald invoke: the event {args.event} is not JSON: {exc}")
        return EXIT_USAGE
    target = resolve(endpoint_url=args.endpoint_url)
    try:
        spec, extra_env = find_function(
            target.client("ssm"), target.local_info.get("functions") or {}, args.function
        )
    except UnknownFunction as exc:
        _print_err(f"herald invoke: {exc}")
        return EXIT_USAGE
    assert target.endpoint_url is not None
    logs = LogSink(sys.stderr)
    try:
        result = invoke_once(spec, target.endpoint_url, event, logs=logs, extra_env=extra_env)
    finally:
        logs.close()
    if result.ok:
        print(json.dumps(result.result, ensure_ascii=False), flush=True)
        return 0
    print(json.dumps(error_document(result), ensure_ascii=False), flush=True)
    return 1


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
    from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger

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
    from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem, public_key_b64

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


def cmd_republish(args: argparse.Namespace) -> int:
    """One community's site rendered again by the publisher with its current settings."""
    from herald_tools import lifecycle

    data = lifecycle.republish(_target(args), args.community, invalidate=not args.no_invalidate)
    _emit(args, data, lifecycle.render_republish)
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    """The stack and everything it keeps, deleted after the stack's name is typed (docs/deploy.md)."""
    from herald_tools import lifecycle

    session = lifecycle.teardown_session(args.profile, args.region)
    plan = lifecycle.plan_teardown(session, args.stack)
    if args.dry_run:
        _emit(args, plan.as_dict(), lambda _data: lifecycle.render_plan(plan))
        return 0
    if args.yes and plan.is_prod:
        _print_err(
            f"herald teardown: {plan.stack_name} is a prod stack (Stage=prod): --yes is not accepted "
            "there; run it without --yes and type the stack's name"
        )
        return EXIT_USAGE
    if not args.yes or not args.quiet:  # the names, before anything goes: what may be left to delete
        for line in lifecycle.render_plan(plan).splitlines():
            _print_err(line)
    if not args.yes:
        print(
            f"Type the stack's name ({inert(plan.stack_name)}) to go on: ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        typed = sys.stdin.readline().strip()
        if typed != plan.stack_name:
            _print_err(f"herald teardown: not confirmed (typed {typed!r}); nothing was changed")
            return 1
    progress = _print_err if not args.quiet else (lambda _m: None)
    data = lifecycle.teardown(session, plan, progress=progress)
    _emit(args, data, lifecycle.render_teardown)
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
        help=f"the local cloud, without --stack (default: $AWS_ENDPOINT_URL, else {DEFAULT_ENDPOINT})",
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
    from herald_tools.report import build_report

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
            simulation = simulate_members(
                info["api_url"],
                community,
                args.members,
                random.Random(args.seed),
                settle=lambda: cloud.wait_until_idle(timeout=args.timeout),
            )
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
    _emit(args, report, render_demo)
    progress(f"the functions' logs are in {logs}")
    return 0


def render_demo(report: dict[str, Any]) -> str:
    """The report as text, with what ``--members`` and ``--subscribers`` did after it."""
    from herald_tools.report import render_text

    lines = [render_text(report)]
    simulation = report.get("members_simulation")
    if simulation:
        statuses = ", ".join(f"{n}× {code}" for code, n in simulation["statuses"].items())
        members, expected = simulation["members"], simulation["expected_members"]
        verdict = "as expected" if members == expected else f"expected {expected:,}"
        shown = f"{members:,}" if members is not None else "unknown"
        lines += [
            "",
            f"Members through the API ({simulation['community']}):",
            f"  {simulation['joined']} joined, {simulation['preferences_set']} set preferences, "
            f"{simulation['left']} left ({simulation['attempts']} requests: {statuses})",
            f"  members {simulation['members_before']:,} → {shown} ({verdict})",
        ]
    push = report.get("push_service")
    if push:
        lines += [
            "",
            f"Web Push to {push['subscribers']} subscriber(s) of the local push service ({push['url']}):",
            f"  {push['received']} notification(s) received, {push['decrypted']} decrypted, "
            f"{push['expected']} expected",
        ]
        for name in ("duplicates", "undelivered", "unexpected"):
            found = push.get(name) or []
            lines.append(f"  {name}: {len(found)}" + ("" if not found else f" (first: {found[0]})"))
    return "\n".join(lines)


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
    local.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        metavar="N",
        help="execution environments per function (default: the template's ReservedConcurrentExecutions "
        "up to 8, else 4; with N: N, or fewer where the template reserves fewer)",
    )
    local.add_argument(
        "--built",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="run the functions from the host twin of sam build's artefacts, on Python 3.13 with nothing "
        "else on their path (default DIR: .aws-sam/build-host, made by `make build-host`)",
    )
    local.set_defaults(func=cmd_local)

    invoke = sub.add_parser(
        "invoke",
        help="run one function once on the running local cloud (like `sam local invoke -e`)",
        description="Run one function once on the running local cloud, in a fresh worker process "
        "with its local environment: the result on stdout, the function's logs on stderr, "
        "exit status 1 when the function fails.",
    )
    invoke.add_argument("function", help="logical id (e.g. IngestFunction) or function name")
    invoke.add_argument(
        "-e", "--event", required=True, metavar="FILE", help="the event, a JSON file (- for stdin)"
    )
    invoke.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=f"the local cloud (default: $AWS_ENDPOINT_URL, else {DEFAULT_ENDPOINT})",
    )
    invoke.set_defaults(func=cmd_invoke)

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

    republish = sub.add_parser(
        "republish",
        parents=[common],
        help="render one community's site again with the current settings (e.g. a new site URL)",
    )
    republish.add_argument("community", help="the community's id, e.g. harbour-line")
    republish.add_argument(
        "--no-invalidate", action="store_true", help="on AWS, leave CloudFront's cached copies alone"
    )
    republish.set_defaults(func=cmd_republish)

    teardown = sub.add_parser(
        "teardown",
        help="delete a stack and everything it keeps (buckets, tables, secret, log groups)",
        description="Delete a deployed stack and what it keeps on deletion on purpose: the buckets "
        "(every object version and delete marker), the tables (deletion protection turned off), the "
        "member-token secret and the log groups. Asks for the stack's name to be typed; --yes skips "
        "that for a stack whose Stage is not prod, never for prod.",
    )
    teardown.add_argument("--stack", metavar="NAME", required=True, help="the stack, e.g. herald-dev")
    teardown.add_argument("--profile", help="AWS profile")
    teardown.add_argument("--region", help="AWS region (default: the profile's)")
    teardown.add_argument("--yes", action="store_true", help="no typed confirmation (not for prod)")
    teardown.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    teardown.add_argument("--quiet", action="store_true", help="no progress on stderr")
    teardown.add_argument("--json", action="store_true", help="print JSON instead of text")
    teardown.set_defaults(func=cmd_teardown)

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


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command ended by SIGPIPE, as `seq 9 | head -1`
EXIT_AWS = 1  # AWS refused or could not be reached: the command line may be right, the world is not

#: What each command was doing when AWS answered with an error, for the one line that says so.
#: ``local`` and ``demo`` are not here: they talk only to the moto they start themselves, so an
#: error from it is Herald's own bug and keeps its traceback.
AWS_ACTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "invoke": lambda a: f"cannot invoke {a.function}",
    "report": lambda a: "cannot read what Herald holds",
    "status": lambda a: "cannot read the queues, outcomes and alarms",
    "outcome": lambda a: f"cannot read the outcome of {a.key}",
    "rejected": lambda a: "cannot list the rejected uploads",
    "redrive": lambda a: f"cannot redrive {a.queue}",
    "reprocess": lambda a: f"cannot reprocess {a.prefix}",
    "vapid-keys": lambda a: f"cannot store the private key as the SSM parameter {a.put}",
    "republish": lambda a: f"cannot republish {a.community}",
    "teardown": lambda a: f"cannot tear down stack {a.stack}",
}

#: Errors with a sentence of their own, by command and AWS error code.
AWS_EXPLAINED: dict[tuple[str, str], Callable[[argparse.Namespace], str]] = {
    ("vapid-keys", "ParameterAlreadyExists"): lambda a: (
        f"the SSM parameter {a.put} already exists (ParameterAlreadyExists); pass --overwrite to replace it"
    ),
}


def aws_error(exc: BaseException) -> tuple[str, str, str] | None:
    """``(code, message, hint)`` of an error AWS answered with, or botocore raised before or instead
    of an answer (no credentials, no region, no connection); None for any other exception."""
    if not any(cls.__module__.startswith("botocore.") for cls in type(exc).__mro__):
        return None  # not botocore's: botocore need not even be imported
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code") or "ClientError"), str(error.get("Message") or exc), ""
    if isinstance(exc, NoCredentialsError):
        hint = "pass --profile, set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        return "NoCredentialsError", "no AWS credentials found", hint
    if isinstance(exc, NoRegionError):
        return "NoRegionError", "no AWS region", "pass --region or set AWS_REGION"
    if isinstance(exc, BotoCoreError):
        return type(exc).__name__, str(exc), ""
    return None


def aws_error_line(args: argparse.Namespace, exc: BaseException) -> str | None:
    """The one line ``herald`` ends with when ``exc`` is AWS's (or botocore's) error; None when it is
    anything else (Herald's own bug, which keeps its traceback) or the command is not in
    :data:`AWS_ACTIONS`."""
    from herald.core.errors import TransientError

    if isinstance(exc, TransientError) and exc.__cause__ is not None:
        exc = exc.__cause__  # Herald's stores wrap AWS's errors so; RequestRefused, a bug, they do not
    found = aws_error(exc)
    action = AWS_ACTIONS.get(args.command)
    if found is None or action is None:
        return None
    code, message, hint = found
    explained = AWS_EXPLAINED.get((args.command, code))
    if explained is not None:
        return f"herald {args.command}: {explained(args)}"
    line = f"herald {args.command}: {action(args)}: {message.rstrip('.')} ({code})"
    return f"{line}; {hint}" if hint else line


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (``herald status --json | head``): end quietly, as cat or seq do.
        # stdout is pointed at /dev/null so that the interpreter's last flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        line = aws_error_line(args, exc)
        if line is None:
            raise
        _print_err(line)
        return EXIT_AWS


if __name__ == "__main__":
    sys.exit(main())
