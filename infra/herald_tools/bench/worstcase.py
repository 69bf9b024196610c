"""Each enrichment step's worst case on hostile text, against its cost on an ordinary post of the size.

A post of one character or short unit repeated (``a-a.``, ``www.``, ``@``, ``#``, 64 KiB of one
letter, lists of language names, Markdown openers that never close...) is what makes a pattern or a
parser do more than linear work, if anything does. Each step of :func:`herald.enrichment.pipeline.
enrich` runs on every shape of :data:`SHAPES` at each size and on an ordinary post of the same size
(the bench corpus's posts run together), in the same process; the result is the worst shape per
step and its time over the ordinary post's (the ratio). Time linear in the size shows as a worst
case that doubles with the size, and a ratio that stays put.

    python -m herald_tools.bench.worstcase [--quick]   # or: python -m herald_tools.bench --only worstcase
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from herald.enrichment import text as t
from herald.enrichment.countries import find_countries
from herald.enrichment.language import detect_language
from herald.enrichment.links import extract_links
from herald.enrichment.markdown import to_plain
from herald.enrichment.pipeline import enrich
from herald.enrichment.topics import classify_topics
from herald_tools.bench import report
from herald_tools.bench.corpus import DEFAULT_SEED, build_corpus

SIZES = (32 * 1024, 64 * 1024)

#: Units repeated to the size: what a pattern over user text can stumble on.
SHAPES: tuple[str, ...] = (
    "a-a.", "a.", ".", "-", "a-", "/", "a/", "//", "@", "a@", "@a", "a.a@", "#", "#a", "a#", ":", "a:",
    "www.", "http://", "http://a", "a1-", "a", "1", "_", "a_", "'", "a'", "é", "😀", "🇫🇷", "\u200d",
    " ", "\t", "\n", "a\n", "French, ", "Somali and ", "St. ", "(", ")", "[", "![a](", "*a", "**a",
    "`a", "<a", "&a", "> ", "- ", "1. ", "|", "~~a", "\\", "%",
)  # fmt: skip

BEGIN = "<!-- bench:worstcase:begin (rewritten by `python -m herald_tools.bench --only worstcase`) -->"
END = "<!-- bench:worstcase:end -->"


def _steps() -> dict[str, Callable[[str], object]]:
    """Each step of ``enrich`` on its own, called on a post's (normalised) text as enrich calls it."""
    return {
        "normalise": t.normalise,
        "Markdown to plain text": to_plain,
        "title and excerpt": lambda s: (t.make_title(s), t.make_excerpt(s)),
        "links": extract_links,
        "hashtags and mentions": lambda s: (t.hashtags(s), t.mentions(s)),
        "emoji": t.emoji_in,
        "countries": find_countries,
        "language": detect_language,
        "topics": lambda s: classify_topics(s, t.hashtags(s)),
        "word count": t.word_count,
        "enrich (plain text post)": lambda s: enrich(s, fmt="txt"),
        "enrich (Markdown post)": lambda s: enrich(s, fmt="md"),
    }


def repeated(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` bytes of UTF-8 (cut at a character)."""
    times = size // len(unit.encode()) + 1
    return (unit * times).encode()[:size].decode("utf-8", "ignore")


def ordinary(size: int, seed: int = DEFAULT_SEED) -> str:
    """The bench corpus's posts, one after another with a blank line between, to ``size`` bytes."""
    texts: list[str] = []
    total = 0
    posts = 200
    while total < size:
        texts = [json.loads(p.body)["text"] for p in build_corpus(posts, seed)]
        total = sum(len(x.encode()) + 2 for x in texts)
        posts *= 2
    return "\n\n".join(texts).encode()[:size].decode("utf-8", "ignore")


def _best(fn: Callable[[str], object], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
        if best > 1.0:
            break  # a second's worth is measured well enough once
    return best


def measure(
    sizes: Sequence[int] = SIZES,
    *,
    shapes: Sequence[str] = SHAPES,
    repeat: int = 3,
    seed: int = DEFAULT_SEED,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per step and size: the ordinary post's time, the worst shape and its time, and the ratio."""
    steps = _steps()
    enrich("Warm up: the models, the indexes, the parsers. #tag @me https://example.org 🇫🇷 France")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        raw = {unit: repeated(unit, size) for unit in shapes}
        raw[""] = ordinary(size, seed)
        # The steps after normalisation get the text as enrich hands it to them.
        normalised = {unit: t.normalise(text) for unit, text in raw.items()}
        for name, fn in steps.items():
            if progress:
                progress(f"worstcase: {name} at {size // 1024} KiB")
            inputs = raw if name == "normalise" or name.startswith("enrich") else normalised
            base = _best(fn, inputs[""], repeat)
            times = {unit: _best(fn, inputs[unit], repeat) for unit in shapes}
            worst_unit = max(times, key=lambda u: times[u])
            rows.append(
                {
                    "step": name,
                    "size": size,
                    "ordinary_ms": base * 1e3,
                    "worst_shape": worst_unit,
                    "worst_ms": times[worst_unit] * 1e3,
                    "ratio": times[worst_unit] / base if base > 0 else None,
                }
            )
    return {"sizes": list(sizes), "shapes": len(shapes), "repeat": repeat, "rows": rows}


def _shape(unit: str) -> str:
    return "`` " + json.dumps(unit, ensure_ascii=False).replace("|", "\\|") + " ``"


def render(r: dict[str, Any]) -> list[str]:
    """The worst-case section of docs/benchmarks.md."""
    sizes = r["sizes"]
    by = {(row["step"], row["size"]): row for row in r["rows"]}
    steps = list(dict.fromkeys(row["step"] for row in r["rows"]))
    head = "| step | " + " | ".join(
        f"ordinary {s // 1024} KiB | worst {s // 1024} KiB (shape) | ratio" for s in sizes
    )
    out = [
        "### Enrichment's worst case (one core)",
        "",
        f"Each step on {r['shapes']} hostile shapes (a short unit repeated to the size) and on an ordinary "
        f"post of the same size (the corpus's posts run together); best of {r['repeat']}, ms.",
        "",
        head + " |",
        "|---|" + "---:|---|---:|" * len(sizes),
    ]
    for step in steps:
        cells = []
        for s in sizes:
            row = by[(step, s)]
            ratio = "–" if row["ratio"] is None else f"**{row['ratio']:,.1f}×**"
            worst = f"{row['worst_ms']:,.1f} ({_shape(row['worst_shape'])})"
            cells.append(f"{row['ordinary_ms']:,.1f} | {worst} | {ratio}")
        out.append(f"| {step} | " + " | ".join(cells) + " |")
    if len(sizes) >= 2:
        growth = [
            by[(step, sizes[-1])]["worst_ms"] / by[(step, sizes[0])]["worst_ms"]
            for step in steps
            if by[(step, sizes[0])]["worst_ms"] > 0
        ]
        out += [
            "",
            f"From {sizes[0] // 1024} to {sizes[-1] // 1024} KiB the worst case of a step grows "
            f"{min(growth):.1f}× to {max(growth):.1f}× (linear time: {sizes[-1] / sizes[0]:.0f}×).",
        ]
    return [*out, ""]


def update_doc(path: Any, section: str, header: str) -> None:
    """Replace this bench's block in ``path`` (appended if missing); the rest of the page is kept."""
    report.write_block(path, BEGIN, END, f"{header}\n\n{section}")


def main(argv: Sequence[str]) -> int:
    quick = "--quick" in argv
    result = measure((4096, 8192) if quick else SIZES, repeat=1 if quick else 3, progress=print)
    print("\n".join(render(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
