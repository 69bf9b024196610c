"""The local cloud bench's pieces that need no cloud: process-tree memory, its block of the doc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from herald_tools.bench import local_cloud


def test_tree_memory_counts_the_children_of_a_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        alone = local_cloud.tree_memory(child.pid)
        with_child = local_cloud.tree_memory(os.getpid())
    finally:
        child.communicate(b"")
    assert alone["processes"] == 1 and alone["rss_kib"] > 0
    assert with_child["processes"] >= 2
    assert with_child["rss_kib"] > alone["rss_kib"]


RESULT = {
    "stored": {
        "singles": 100,
        "rows": [
            {
                "stored": 100,
                "local": {"seconds": 10.0, "posts_per_s": 10.0, "settled_s": 30.0, "store_s": 5.0},
                "in_process": {"seconds": 2.0, "posts_per_s": 50.0},
                "local_over_in_process": 0.2,
            },
            {
                "stored": 5000,
                "local": {"seconds": 12.0, "posts_per_s": 8.3, "settled_s": 40.0, "store_s": 90.0},
                "in_process": {"seconds": 2.5, "posts_per_s": 40.0},
                "local_over_in_process": 0.21,
            },
        ],
        "local_slowdown": 1.2,
        "in_process_slowdown": 1.25,
    },
    "herald_local": {
        "export_posts": 3000,
        "singles": 500,
        "uploaded_s": 9.0,
        "outcomes_s": 300.0,
        "settled_s": 900.0,
        "posts_stored": 3500,
        "idle_rss_mb": 400,
        "peak_rss_mb": 1400,
        "peak_pss_mb": 1200,
        "processes": 12,
    },
}


def test_the_block_is_replaced_and_the_page_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nProse before.\n", encoding="utf-8")
    block = "\n".join(local_cloud.render(RESULT))
    assert "| 5,000 (5,000) | 12.0 | 8.3 | 40.0 | 2.5 | 40.0 | 0.21 |" in block
    assert "local cloud **1.2**" in block
    assert "1,400 / 1,200 MB" in block
    local_cloud.update_doc(doc, block, "Run one.")
    local_cloud.update_doc(doc, block.replace("1,400", "1,300"), "Run two.")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nProse before.\n")
    assert text.count(local_cloud.BEGIN) == 1 and "Run two." in text and "Run one." not in text
    assert "1,300 / 1,200 MB" in text
