"""The joins bench's pieces that need no cloud: percentiles, its block of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from herald_tools.bench import local_joins
from herald_tools.bench.__main__ import OWN_BLOCK, PARTS

RESULT = {
    "joins": 600,
    "clients": 32,
    "pool_size": 8,
    "environments": 8,
    "cold_starts": 8,
    "start_s": 2.4,
    "wall_s": 17.4,
    "joins_per_s": 34.5,
    "p50_ms": 780.0,
    "p99_ms": 3036.0,
    "max_ms": 5423.0,
    "timeouts": 0,
    "errors": 0,
    "statuses": {"201": 600},
    "members_expected": 600,
    "members_counted": 600,
    "count_exact": True,
    "worker_rss_mb": 93.1,
    "cpu_count": 2,
}


def test_percentiles_pick_ranks_of_the_sorted_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert local_joins._percentile(values, 0.5) in (50.0, 51.0)
    assert local_joins._percentile(values, 0.99) == 99.0
    assert local_joins._percentile([], 0.99) == 0.0


def test_local_joins_is_a_part_with_its_own_block(tmp_path: Path) -> None:
    assert "local_joins" in PARTS and "local_joins" in OWN_BLOCK
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nProse that stays.\n", encoding="utf-8")
    block = "\n".join(local_joins.render(RESULT))
    assert "| 780 ms | 3036 ms | 5423 ms | 34.5 | 0 | 0 | 600 of 600 (exact) |" in block
    local_joins.update_doc(doc, block, "Run of today.")
    local_joins.update_doc(doc, block.replace("780 ms", "790 ms"), "Run of tomorrow.")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nProse that stays.\n")
    assert text.count(local_joins.BEGIN) == 1 and "790 ms" in text and "780 ms" not in text
    assert "Run of tomorrow." in text


def test_a_wrong_count_is_shown_as_wrong() -> None:
    block = "\n".join(local_joins.render({**RESULT, "members_counted": 599, "count_exact": False}))
    assert "599 of 600 (WRONG)" in block


def test_the_counts_lag_is_the_age_of_the_first_join_it_missed() -> None:
    answered = [1.0, 2.0, 3.0, 4.0]
    samples = [(0.5, 0), (2.5, 1), (3.0, 3), (5.0, 4), (6.0, 5)]
    # At 2.5 s the count held 1 join: the second, answered at 2.0, waited 0.5 s; from 3.0 s on
    # it held every join answered by then (one more than answered: counted before its answer).
    assert local_joins.count_lags(answered, samples) == [0.0, 0.5, 0.0, 0.0, 0.0]
    assert local_joins.count_lags(answered, [(4.5, 1)]) == [2.5]


def test_the_block_gives_the_counts_lag_when_measured() -> None:
    lagged = {**RESULT, "count_reads": 80, "count_lag_p50_s": 0.4, "count_lag_max_s": 1.6}
    block = "\n".join(local_joins.render({**lagged, "count_exact_after_s": 0.9}))
    assert "0.40 s at the median read, 1.60 s at most" in block
    assert "exact 0.90 s after the last join was answered" in block
    assert "at the median read" not in "\n".join(local_joins.render(RESULT))
