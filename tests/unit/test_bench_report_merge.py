"""A bench run of some parts rewrites their subsections of docs/benchmarks.md, not the others'."""

from __future__ import annotations

from pathlib import Path

from herald_tools.bench import report

OLD = """Run of 2026-11-28 on a machine; `make bench`, 291 s in all.

### 1. Enrich + validate

old numbers of one

### Fan-out of one post

old fan-out numbers
"""

NEW = """Run of 2026-12-02 on a machine; `python -m herald_tools.bench --only fanout`, 90 s in all.

### Fan-out of one post

new fan-out numbers
"""


def test_a_partial_run_replaces_only_its_own_subsections(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    report.update_doc(doc, OLD)
    report.update_doc(doc, NEW, partial=True)
    text = doc.read_text(encoding="utf-8")
    assert "old numbers of one" in text and "Run of 2026-11-28" in text
    assert "old fan-out numbers" not in text and "new fan-out numbers" in text
    assert "This subsection alone: run of 2026-12-02" in text
    assert text.index("### 1. Enrich") < text.index("### Fan-out of one post")


def test_a_whole_run_replaces_the_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    report.update_doc(doc, OLD)
    report.update_doc(doc, NEW)
    text = doc.read_text(encoding="utf-8")
    assert "old numbers of one" not in text and "new fan-out numbers" in text


def test_a_replaced_subsection_in_the_middle_keeps_its_blank_line(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    report.update_doc(doc, OLD)
    fanout = "### Fan-out of one post\n\nnew fan-out numbers"
    first = NEW.replace(fanout, "### 1. Enrich + validate\n\nnew one")
    report.update_doc(doc, first, partial=True)
    text = doc.read_text(encoding="utf-8")
    assert "new one\n\n### Fan-out of one post" in text
