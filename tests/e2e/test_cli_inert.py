"""Keys and texts that hold terminal controls are shown inert by ``herald report``, ``status``,
``rejected`` and ``outcome``, and stay exact in their ``--json`` output (a real local cloud)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald_tools.cli import _publish_outputs, main
from herald_tools.localcloud.cloud import LocalCloud
from herald_tools.terminal import inert, inert_json, unsafe

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

# Clear the screen, retitle the window, go back to the start of the line, reverse the rest of it,
# a NUL, a C1 control sequence introducer, DEL, a line separator and a Unicode tag character.
HOSTILE = "\x1b[2J\x1b]0;title\x07\rA\u202eB\x00\x9b6n\x7f\u2028\U000e0041"
ESCAPED = "\\x1b[2J\\x1b]0;title\\x07\\rA\\u202eB\\x00\\x9b6n\\x7f\\u2028\\U000e0041"
COMMUNITY = "inert"
REJECTED_KEY = f"posts/{COMMUNITY}/evil\x1b[2J\x1b]0;title\x07\r\u202etxt.json"
POST_KEY = f"posts/{COMMUNITY}/note\u202e\x1b[31m.md"  # a key outside the layout: rejected
CLEAN_KEY = f"posts/{COMMUNITY}/note.json"  # published, with the controls in its title and text


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    logs = tmp_path_factory.mktemp("inert") / "functions.log"
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=str(logs)).start(port=0) as started:
        _publish_outputs(started)
        s3 = started.client("s3")
        bucket = started.resources.uploads_bucket
        s3.put_object(
            Bucket=bucket, Key=REJECTED_KEY, Body=json.dumps({"text": 5, "title": HOSTILE}).encode()
        )
        s3.put_object(Bucket=bucket, Key=POST_KEY, Body=b"The clinic opens at 9.")
        post = {"title": f"Title {HOSTILE} end", "text": f"The clinic opens at 9.{HOSTILE} #Welcome"}
        s3.put_object(Bucket=bucket, Key=CLEAN_KEY, Body=json.dumps(post).encode())
        started.wait_until_idle(timeout=90)
        yield started


def herald(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--endpoint-url", cloud.endpoint_url])
    out, err = capsys.readouterr()
    return code, out, err


def stored_titles(cloud: LocalCloud) -> list[str]:
    from herald.ingest.adapters.dynamo_content import DynamoContentStore

    store = DynamoContentStore(cloud.resources.content_table, cloud.client("dynamodb"))
    return [p.title for p in store.community_posts(COMMUNITY)]


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` that would steer a terminal (line breaks between lines aside)."""
    return [c for c in text if unsafe(c) and c != "\n"]


def test_the_inert_form_escapes_what_steers_a_terminal_and_keeps_text() -> None:
    assert inert(HOSTILE) == ESCAPED
    assert inert("a\nb\tc") == "a\\nb\\tc"  # a key cannot forge a line of its own
    assert inert("Opening hours ☀ é مرحبا‌ها 👩‍👩‍👧") == "Opening hours ☀ é مرحبا‌ها 👩‍👩‍👧"  # ZWNJ, ZWJ stay
    assert inert("\u2066x\u2069\u200f\ufeff\u00ad") == "\\u2066x\\u2069\\u200f\\ufeff\\xad"
    assert inert("lone \udcff") == "lone \\udcff"  # printable, where printing it would raise
    data = {"key": HOSTILE, "list": [HOSTILE, 1, None], HOSTILE: "\U000e0001"}
    text = inert_json(data)
    assert json.loads(text) == data and raw_controls(text) == []


@pytest.mark.parametrize(
    "command",
    [
        ("outcome", REJECTED_KEY),
        ("outcome", POST_KEY),
        ("rejected", "--since", "1h"),
        ("status",),
        ("report",),
    ],
    ids=["outcome-rejected", "outcome-published", "rejected", "status", "report"],
)
def test_text_output_is_inert(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], command: tuple) -> None:
    code, out, err = herald(cloud, capsys, *command)
    assert code == 0, err
    assert raw_controls(out) == [] and raw_controls(err) == []
    if command[0] in ("outcome", "rejected") and (command[0] == "rejected" or command[1] == REJECTED_KEY):
        assert inert(REJECTED_KEY) in out  # the key is there, escaped
    if command[0] == "outcome" and command[1] == POST_KEY:
        assert inert(POST_KEY) in out.splitlines()[0]
    if command[0] == "report":
        [title] = stored_titles(cloud)
        assert (
            "\x1b[2J" in title and "\u202e" in title
        )  # ingest keeps them (it folds \r and \u2028 to spaces)
        assert f"• {inert(title)}" in out  # the post's title, escaped
        assert inert(POST_KEY) in out and inert(REJECTED_KEY) in out
    if command[0] == "status":
        assert inert(POST_KEY) in out or inert(REJECTED_KEY) in out


@pytest.mark.parametrize("command", [("outcome", REJECTED_KEY), ("rejected", "--since", "1h"), ("report",)])
def test_json_output_is_exact_and_inert(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], command: tuple
):
    code, out, err = herald(cloud, capsys, *command, "--json")
    assert code == 0, err
    assert raw_controls(out) == []
    data = json.loads(out)
    keys = {
        "outcome": lambda: [data["key"]],
        "rejected": lambda: [r["key"] for r in data["rejected"]],
        "report": lambda: [o["key"] for o in data["objects"]],
    }[command[0]]()
    assert REJECTED_KEY in keys  # the very key, every character of it
    if command[0] == "report":
        assert [p["title"] for p in data["posts"]] == stored_titles(cloud)


def test_an_unknown_key_is_named_inert_on_stderr(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = herald(cloud, capsys, "outcome", f"posts/{COMMUNITY}/missing\x1b[2J\u202e.txt")
    assert code == 1 and out == ""
    assert raw_controls(err) == [] and "missing\\x1b[2J\\u202e.txt" in err
