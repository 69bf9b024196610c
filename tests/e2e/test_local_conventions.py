"""``herald local`` and friends as a new user meets them: credentials, ports, signals, pipes, invoke."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.herald_local import herald_local
from tests.integration.api_events import rest_event

ROOT = Path(__file__).resolve().parents[2]
HERALD = [sys.executable, "-m", "herald_tools.cli"]
pytestmark = pytest.mark.e2e


def _bare_env(home: Path) -> dict[str, str]:
    """A machine without AWS configuration: no AWS_* variables, an empty home directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    return env


def run(
    *args: str, env: dict[str, str], timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERALD, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kwargs,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("flag", "others"),
    [
        ("--port", ["--api-port", "0", "--site-port", "0"]),
        ("--api-port", ["--port", "0", "--site-port", "0"]),
        ("--site-port", ["--port", "0", "--api-port", "0"]),
    ],
)
def test_a_taken_port_is_one_line_naming_it_and_the_flag(
    taken_port: int, flag: str, others: list[str], tmp_path: Path
) -> None:
    result = run("local", flag, str(taken_port), *others, env=_bare_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        f"herald local: port {taken_port} is in use ({flag} to choose another, 0 for any free port)\n"
    )
    assert result.stdout == ""


def _children(pid: int) -> set[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``herald local --json`` on free ports, started as a user would, without AWS configuration."""
    with herald_local(env=_bare_env(tmp_path)) as started:
        yield started


def test_sigterm_stops_it_and_its_function_workers(
    local: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    process, info = local
    with urllib.request.urlopen(f"{info['api_url']}/openapi.json", timeout=60) as response:
        assert response.status == 200  # the API function's worker is running now
    workers = _children(process.pid)
    assert workers
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert not [pid for pid in workers if _alive(pid)]


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to one thread of another process (Linux ``tgkill``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    sys_tgkill = 234 if platform.machine() in ("x86_64", "AMD64") else 131  # x86-64, else arm64
    if libc.syscall(sys_tgkill, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_the_kernel_hands_to_any_thread_stops_it(
    local: tuple[subprocess.Popen[str], dict[str, Any]], signum: int
) -> None:
    """A signal sent to the process may be delivered to any of its threads (a poller, a server, a
    worker's log reader), not only the main one: the stop must not depend on which."""
    process, info = local
    with urllib.request.urlopen(f"{info['api_url']}/openapi.json", timeout=60) as response:
        assert response.status == 200
    others = sorted(
        int(t.name) for t in Path(f"/proc/{process.pid}/task").iterdir() if int(t.name) != process.pid
    )
    assert others
    _tgkill(process.pid, others[-1], signum)
    assert process.wait(timeout=60) in (0, -signum)


def test_the_printed_credentials_work_without_aws_configuration(
    local: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path
) -> None:
    """What the ready line says to export is all an SDK (and herald's own commands) need."""
    _, info = local
    assert info["credentials"] == {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    assert info["env"]["AWS_ENDPOINT_URL"] == info["endpoint_url"]
    assert info["env"]["AWS_REGION"] == info["region"] == "us-east-1"
    env = {**_bare_env(tmp_path), **info["env"]}
    key = "posts/walk-in/hours.txt"
    upload = (
        "import boto3, sys; boto3.client('s3').put_object(Bucket=sys.argv[1], Key=sys.argv[2], "
        "Body=b'Walk-in hours in Jordan are 9 to 12.')"
    )
    put = subprocess.run(
        [sys.executable, "-c", upload, info["uploads_bucket"], key],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert put.returncode == 0, put.stderr
    deadline = time.monotonic() + 60
    while True:  # no --endpoint-url: AWS_ENDPOINT_URL names this cloud (not the default port)
        result = run("outcome", key, "--json", env=env)
        if result.returncode == 0:
            break
        assert "no outcome recorded" in result.stderr, result.stderr
        assert time.monotonic() < deadline, "the upload was never processed"
        time.sleep(0.5)  # polling the CLI as a user would; each call is a fresh process
    assert json.loads(result.stdout)["status"] == "published"


def test_function_logs_reach_cloudwatch_logs(local: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    """As on AWS, what a function logs is in /aws/lambda/<name>, one stream per execution environment."""
    import boto3

    _, info = local
    clients = {"endpoint_url": info["endpoint_url"], "region_name": "us-east-1"}
    clients |= {"aws_access_key_id": "any", "aws_secret_access_key": "any"}
    key = "posts/walk-in/Log me ✓.txt"
    boto3.client("s3", **clients).put_object(Bucket=info["uploads_bucket"], Key=key, Body=b"Logged.")
    logs = boto3.client("logs", **clients)
    [group] = [
        g["logGroupName"]
        for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
        if g["logGroupName"].endswith("-IngestFunction")
    ]
    deadline = time.monotonic() + 60
    while True:
        events = logs.filter_log_events(logGroupName=group)["events"]
        lines = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
        if any(line.get("object_key") == key and line.get("message") == "upload published" for line in lines):
            break
        assert time.monotonic() < deadline, f"no 'upload published' line for the key in {group}"
        time.sleep(0.2)  # the lines are shipped in batches from a background thread
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams and all("[$LATEST]" in s["logStreamName"] for s in streams)


def _api_event(community: str) -> dict[str, Any]:
    """A REST API proxy event for GET /communities/{id}, as API Gateway sends it."""
    return rest_event("GET", f"/communities/{community}", headers={"Accept": "application/json"})


def test_invoke_runs_one_function_once_like_sam_local_invoke(
    local: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path
) -> None:
    _, info = local
    env = {**_bare_env(tmp_path), "AWS_ENDPOINT_URL": info["endpoint_url"]}
    event = tmp_path / "event.json"
    event.write_text(json.dumps(_api_event("nobody-here")))
    by_id = run("invoke", "ApiFunction", "--event", str(event), env=env)
    assert by_id.returncode == 0, by_id.stderr
    answer = json.loads(by_id.stdout)  # stdout is the result alone; the logs went to stderr
    assert answer["statusCode"] == 404 and "nobody-here" in answer["body"]
    by_name = run(
        "invoke",
        info["functions"]["ApiFunction"],
        "--event",
        "-",
        "--endpoint-url",
        info["endpoint_url"],
        env=_bare_env(tmp_path),
        input=json.dumps(_api_event("nobody-here")),
    )
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout)["statusCode"] == 404
    failed = run("invoke", "IngestFunction", "--event", "-", env=env, input="{}")
    assert failed.returncode == 1  # a function error, as Lambda reports it
    assert json.loads(failed.stdout)["errorType"]
    # The function's logs on stderr, each line under its name (a 404 from the API logs nothing).
    assert f"[{info['functions']['IngestFunction']}]" in failed.stderr
    unknown = run("invoke", "NoSuchFunction", "--event", str(event), env=env)
    assert unknown.returncode == 2 and "ApiFunction" in unknown.stderr  # it lists what exists


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``herald … --json | head -c 10``: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*HERALD, "vapid-keys", "--json"],
            cwd=ROOT,
            env=_bare_env(tmp_path),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no traceback
    assert result.returncode == 128 + signal.SIGPIPE  # what a shell shows for `seq 9 | head -1`'s seq


def test_demo_members_and_subscribers_read_as_text(tmp_path: Path) -> None:
    result = run(
        "demo",
        "--members",
        "6",
        "--subscribers",
        "2",
        "--site-dir",
        str(tmp_path / "site"),
        env=_bare_env(tmp_path),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Members through the API (harbour-line):" in out
    assert "6 joined" in out and "(as expected)" in out
    assert "Web Push to 2 subscriber(s) of the local push service" in out
    assert "undelivered: 0" in out and "duplicates: 0" in out
