"""The bench runs on a tiny input and its results are well formed (structure and sanity, no timings)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from herald_tools.bench import aws_calls, imports, report, throughput
from herald_tools.bench.__main__ import environment
from herald_tools.bench.corpus import build_corpus, export_text


def _positive(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def test_corpus_is_deterministic_valid_and_varied() -> None:
    first, second = build_corpus(60, seed=7), build_corpus(60, seed=7)
    assert [p.body for p in first] == [p.body for p in second]
    assert [p.body for p in build_corpus(60, seed=8)] != [p.body for p in first]
    assert any(p.source == "sample" for p in first)
    texts = [json.loads(p.body)["text"] for p in first]
    assert len({p.language for p in first}) >= 4
    assert any("#" in t for t in texts) and any("bit.ly/" in t or "www." in t for t in texts)
    export = export_text(texts[:5]).decode()
    assert export.count("Scan QR code to join Community") == 2


def test_throughput_ratios_are_positive() -> None:
    result = throughput.measure(build_corpus(12), repeat=1, first_call_runs=0)
    assert result["posts"] == 12
    for key in ("baseline_us", "herald_us", "ratio", "baseline_posts_per_s", "herald_posts_per_s"):
        assert _positive(result[key]), key
    assert set(result["steps"]) == {"parse_post", "enrich", *throughput.STEPS}
    for step in result["steps"].values():
        assert _positive(step["us_per_call"]) and step["calls"] > 0
    assert result["first_call"] is None


def test_import_probe_reports_both_sides() -> None:
    result = imports.measure(runs=1)
    for side in ("app", "baseline"):
        assert _positive(result[side]["ms"]) and _positive(result[side]["hwm_mib"])
    assert _positive(result["ratio"]) and _positive(result["memory_ratio"])
    assert all(_positive(row["cumulative_ms"]) for row in result["heaviest"])
    assert set(result["functions"]) == set(imports.FUNCTIONS)
    assert result["functions"]["ingest"]["ms"] == result["app"]["ms"]
    for row in result["functions"].values():
        assert _positive(row["ms"]) and _positive(row["ratio"]) and row["modules"] > 0
    assert result["worst_ratio"] == max(row["ratio"] for row in result["functions"].values())


def test_heaviest_imports_reads_children_of_the_module() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | site",
            "import time:        50 |         50 |     deep",
            "import time:       300 |        350 |   powertools",
            "import time:        20 |         20 |   small",
            "import time:        10 |        400 | app",
        ]
    )
    assert imports.heaviest_imports(stderr) == [
        {"module": "powertools", "cumulative_ms": 0.35},
        {"module": "small", "cumulative_ms": 0.02},
    ]


@pytest.fixture(scope="module")
def tiny_aws_run() -> dict:
    bodies = [p.body for p in build_corpus(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return aws_calls.measure(
            bodies, singles=4, export_posts=6, edits=1, duplicates=1, deletes=1, rejects=1
        )


def test_aws_calls_are_counted_per_scenario(tiny_aws_run: dict) -> None:
    scenarios = {s["name"]: s for s in tiny_aws_run["scenarios"]}
    assert scenarios["new single post"]["statuses"] == {"published": 4}
    assert scenarios["delete"]["statuses"] == {"deleted": 1}
    assert scenarios["rejected upload"]["statuses"] == {"rejected": 1}
    assert tiny_aws_run["export_published"] == 6
    for s in scenarios.values():
        assert s["failures"] == 0
        assert s["calls"] == sum(s["by_operation"].values()) > 0
        assert _positive(s["ratio"]) and _positive(s["calls_per_post"])
        assert all(op.split(":")[0] in ("s3", "dynamodb") for op in s["by_operation"])


def test_the_doc_keeps_its_prose_and_replaces_its_numbers(tmp_path: Path, tiny_aws_run: dict) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nHand-written.\n\n{report.BEGIN}\nold numbers\n{report.END}\n\nAfter.\n")
    env = {**environment("test"), "duration_s": 1.0}
    report.update_doc(doc, report.render({"environment": env, "aws_calls": tiny_aws_run}))
    text = doc.read_text()
    assert "Hand-written." in text and "After." in text and "old numbers" not in text
    assert text.count(report.BEGIN) == 1 and "| new single post | 4 | 4 |" in text


def test_worstcase_reports_every_step_at_every_size(tmp_path: Path) -> None:
    from herald_tools.bench import worstcase

    result = worstcase.measure((1024, 2048), shapes=("a-a.", "@", "French, "), repeat=1)
    steps = set(worstcase._steps())
    cells = {(row["step"], row["size"]) for row in result["rows"]}
    assert cells == {(s, n) for s in steps for n in (1024, 2048)}
    for row in result["rows"]:
        assert row["worst_shape"] in ("a-a.", "@", "French, ")
        assert _positive(row["ordinary_ms"]) and _positive(row["worst_ms"]) and _positive(row["ratio"])
    assert len(worstcase.ordinary(2048).encode()) <= 2048
    assert len(worstcase.repeated("é", 2048).encode()) == 2048
    doc = tmp_path / "benchmarks.md"
    blocks = f"{worstcase.BEGIN}\nold\n{worstcase.END}\n\n{report.BEGIN}\nkept\n{report.END}\n"
    doc.write_text(f"# Benchmarks\n\n{blocks}")
    worstcase.update_doc(doc, "\n".join(worstcase.render(result)), "Run of now.")
    text = doc.read_text()
    assert "old" not in text and "kept" in text and "| word count |" in text and "Run of now." in text


def test_hostile_push_is_a_part_with_its_own_block(tmp_path: Path) -> None:
    """Registered in ``make bench`` and writing its own block (the run itself needs a loopback push
    service: tests/integration/test_bench_hostile_push.py)."""
    from herald_tools.bench import hostile_push
    from herald_tools.bench.__main__ import OWN_BLOCK, PARTS

    assert "hostile_push" in PARTS and "hostile_push" in OWN_BLOCK
    row = {"seconds": 0.5, "python_peak_bytes": 2048, "rss_growth_bytes": 0, "status": None}
    result = {
        "deadline_s": 0.5,
        "cases": {
            "ok": {**row, "answer_bytes_read": 0, "outcome": "sent", "status": 201, "detail": ""},
            "trickle": {**row, "answer_bytes_read": None, "outcome": "retry", "detail": "cut | off"},
        },
    }
    doc = tmp_path / "benchmarks.md"
    blocks = f"{hostile_push.BEGIN}\nold\n{hostile_push.END}\n\n{report.BEGIN}\nkept\n{report.END}\n"
    doc.write_text(f"# Benchmarks\n\n{blocks}")
    hostile_push.update_doc(doc, "\n".join(hostile_push.render(result)), "Run of now.")
    text = doc.read_text()
    assert "old" not in text and "kept" in text and "Run of now." in text
    assert "| answers 201 | 0.500 s | 2 KiB | 0 KiB | 0 | `sent` (201) |" in text
    assert "| – | `retry`, cut \\| off |" in text  # a detail cannot break the table
