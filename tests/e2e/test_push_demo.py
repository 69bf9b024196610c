"""``herald demo --subscribers``: members of the local push service get each notifying post once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_demo_subscribers_receive_every_post_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    command = [sys.executable, "-m", "herald_tools.cli", "demo", "--subscribers", "20", "--json", "--quiet"]
    result = subprocess.run(
        [*command, "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    push = report["push_service"]
    assert push["subscribers"] == 20
    assert push["received"] > 0 and push["received"] == push["decrypted"] == push["expected"]
    assert push["duplicates"] == [] and push["undelivered"] == [] and push["unexpected"] == []
    notifying = [p for p in report["posts"] if p["source"] == "post"]
    assert notifying and all(p["delivery"]["sent"] == p["delivery"]["targeted"] > 0 for p in notifying)
    assert sum(p["delivery"]["sent"] for p in notifying) == push["received"]
    assert all(p["delivery"] is None for p in report["posts"] if p["source"] == "export")
    assert report["local_cloud"]["push_service_url"] == push["url"]
    assert report["local_cloud"]["vapid_public_key"]
