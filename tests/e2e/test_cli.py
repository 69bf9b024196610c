"""The ``herald`` command line as a user runs it: demo, local, report, in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from herald_tools.localcloud.server import free_port
from tests.herald_local import herald_local

ROOT = Path(__file__).resolve().parents[2]
HERALD = [sys.executable, "-m", "herald_tools.cli"]
pytestmark = pytest.mark.e2e


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERALD, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_env(), check=False
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    return env


def test_demo_publishes_the_sample_community() -> None:
    result = run("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    statuses = {o["key"].rsplit("/", 1)[1]: o["status"] for o in report["objects"]}
    assert statuses == {
        "community-export.txt": "published",
        "welcome.md": "published",
        "clinic-hours.json": "published",
        "aviso-estafa.txt": "published",
        "broken.json": "rejected",
    }
    [community] = report["communities"]
    assert community["name"] == "Harbour Line Migrant Network" and community["verified"] is True
    assert community["members"] == 48_500 and community["created_year"] == 2019
    assert community["posts"] == len(report["posts"]) == 13
    assert report["posts"][0]["pinned"] is True  # pinned first
    languages = {p["language"] for p in report["posts"]}
    assert {"en", "fr", "es", "ar"} <= languages
    post_fields = {
        "id",
        "community",
        "key",
        "title",
        "text",
        "excerpt",
        "links",
        "hashtags",
        "mentions",
        "countries",
        "language",
        "topics",
        "word_count",
        "version",
        "created_at",
        "updated_at",
    }
    assert all(post_fields <= set(p) for p in report["posts"])
    assert "processed 5/5 uploads" in result.stderr  # progress is shown


def test_demo_with_files_and_a_readable_report(tmp_path: Path) -> None:
    post = tmp_path / "Grand opening é.md"
    post.write_text("---\ntitle: Opening\n---\nThe new centre in Beira, Mozambique opens today. #Welcome")
    export = tmp_path / "page.txt"
    export.write_text(
        "One 🇰🇪 post about Kenya.\n\nTwo.\nScan QR code to join Community\nMy Group\n950 Members\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": 5}')
    result = run("demo", str(post), str(bad), "--export", str(export), "--community", "my-group")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "■ My Group (my-group)" in out and "950 members, 3 posts" in out
    assert "published posts/my-group/Grand opening é.md" in out.replace("  ", " ")
    assert "✗ text: Input should be a valid string (got int)" in out


@pytest.fixture
def local_cloud() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    with herald_local(env=_env(), stop_timeout=30) as started:
        yield started


def test_local_serves_any_s3_client_until_interrupted(
    local_cloud: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, info = local_cloud
    assert info["endpoint_url"].startswith("http://127.0.0.1:")
    assert info["uploads_bucket"] and info["content_table"]
    s3 = boto3.client(
        "s3",
        endpoint_url=info["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    key = "posts/walk-in/Notice board ✓.txt"
    s3.put_object(Bucket=info["uploads_bucket"], Key=key, Body=b"Walk-in hours in Jordan are 9 to 12.")
    deadline = time.monotonic() + 60
    while True:
        result = run("report", "--endpoint-url", info["endpoint_url"], "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        # The report reads global secondary indexes, which DynamoDB keeps eventually consistent:
        # the outcome may be listed a moment before the post is, though one transaction wrote both.
        if any(o["key"] == key for o in report["objects"]) and report["posts"]:
            break
        assert time.monotonic() < deadline, "the upload was never processed"
    [outcome] = [o for o in report["objects"] if o["key"] == key]
    assert outcome["status"] == "published"
    assert report["posts"][0]["countries"] == ["JO"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_report_says_when_nothing_answers() -> None:
    result = run("report", "--endpoint-url", f"http://127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode != 0
    assert "no local cloud answers" in result.stderr


def test_demo_members_keeps_the_count_exact() -> None:
    result = run("demo", "--members", "25", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    simulation = report["members_simulation"]
    [community] = report["communities"]
    assert simulation["joined"] == 25 and simulation["left"] > 0
    assert community["members"] == simulation["expected_members"] == 48_500 + 25 - simulation["left"]


def test_vapid_keys_are_stored_as_a_secure_string(
    local_cloud: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    from herald.fanout.channels.vapid import load_vapid_key, public_key_b64

    _, info = local_cloud
    name = "/herald/test/vapid-private-key"
    result = run("vapid-keys", "--endpoint-url", info["endpoint_url"], "--put", name, "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    ssm = boto3.client(
        "ssm",
        endpoint_url=info["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString"
    key = load_vapid_key(parameter["Value"])
    assert public_key_b64(key.public_key()) == printed["public_key"]
    assert "private_key_pem" not in printed  # stored, never printed
