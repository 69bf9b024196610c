"""Cost of parsing, validating and enriching a post, against bare JSON parsing plus validation.

Both sides run in this process (one core), on the same corpus, interleaved repetition by
repetition, after a warm-up pass; each repetition times the whole corpus with
``time.perf_counter`` and the median repetition is reported. One-off costs (the language model,
the country index, the topic taxonomy, linkify's tables) are measured apart, in fresh processes,
as the "first call".
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from herald_tools.bench.corpus import CorpusPost

#: Enrichment steps timed apart, in the order the pipeline runs them.
STEPS = ("text", "links", "countries", "language", "topics")


@dataclass(frozen=True, slots=True)
class Timed:
    name: str
    us_per_post: float  # median over repetitions
    runs_us: tuple[float, ...]  # every repetition, µs per post

    @property
    def posts_per_s(self) -> float:
        return 1e6 / self.us_per_post


def _time_once(fn: Callable[[Any], Any], inputs: Sequence[Any]) -> float:
    """Seconds to call ``fn`` on every input once."""
    gc.collect()
    start = time.perf_counter()
    for item in inputs:
        fn(item)
    return time.perf_counter() - start


def time_interleaved(
    cases: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], repeat: int, warmup: int = 1
) -> dict[str, Timed]:
    """Time every case ``repeat`` times, the cases taking turns (and rotating who goes first)."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            fn, inputs = cases[name]
            _time_once(fn, inputs)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            fn, inputs = cases[name]
            runs[name].append(_time_once(fn, inputs) * 1e6 / max(1, len(inputs)))
    return {name: Timed(name, statistics.median(values), tuple(values)) for name, values in runs.items()}


# -- the two sides ---------------------------------------------------------------------------------


def baseline_fn() -> Callable[[bytes], Any]:
    """What any JSON API does with a post: ``json.loads`` and pydantic validation."""
    from herald.content.models import PostInput

    validate = PostInput.model_validate

    def baseline(body: bytes) -> Any:
        return validate(json.loads(body))

    return baseline


def herald_fn() -> Callable[[bytes], Any]:
    """What the ingest function does with a post body: ``parse_post`` then ``enrich``."""
    from herald.enrichment.pipeline import enrich
    from herald.ingest.parsing import IngestLimits, parse_post

    limits = IngestLimits()

    def herald(body: bytes) -> Any:
        post = parse_post(body, "json", limits)
        return enrich(post.text, title=post.title, tags=post.tags, lang=post.lang, fmt="json")

    return herald


def step_cases(bodies: Sequence[bytes]) -> dict[str, tuple[Callable[[Any], Any], Sequence[Any]]]:
    """Each part of the work alone, fed exactly what the pipeline feeds it."""
    from herald.enrichment import text as t
    from herald.enrichment.countries import find_countries
    from herald.enrichment.language import detect_language
    from herald.enrichment.links import extract_links
    from herald.enrichment.pipeline import enrich
    from herald.enrichment.topics import classify_topics
    from herald.ingest.parsing import IngestLimits, parse_post

    limits = IngestLimits()
    posts = [parse_post(body, "json", limits) for body in bodies]
    plain = [t.normalise(p.text) for p in posts]
    hinted = [(text, [*t.hashtags(text), *p.tags]) for text, p in zip(plain, posts, strict=True)]
    undeclared = [text for text, p in zip(plain, posts, strict=True) if not p.lang]

    def text_step(text: str) -> None:
        t.normalise(text)
        t.hashtags(text)
        t.word_count(text)
        t.make_title(text, None)
        t.make_excerpt(text)
        t.mentions(text)
        t.emoji_in(text)
        t.content_hash(text)

    def enrich_only(post: Any) -> Any:
        return enrich(post.text, title=post.title, tags=post.tags, lang=post.lang, fmt="json")

    return {
        "parse_post": (lambda body: parse_post(body, "json", limits), bodies),
        "enrich": (enrich_only, posts),
        "text": (text_step, plain),
        "links": (extract_links, plain),
        "countries": (find_countries, plain),
        "language": (detect_language, undeclared),
        "topics": (lambda pair: classify_topics(*pair), hinted),
    }


# -- first calls, in fresh processes ---------------------------------------------------------------

_FIRST_CALL = r"""
import json, sys, time
body = sys.argv[1].encode()
mode = sys.argv[2]
out = {}
t = time.perf_counter()
if mode == "baseline":
    from herald.content.models import PostInput
    out["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    PostInput.model_validate(json.loads(body))
    out["first_s"] = time.perf_counter() - t
    t = time.perf_counter()
    PostInput.model_validate(json.loads(body))
    out["second_s"] = time.perf_counter() - t
elif mode == "herald":
    from herald.ingest.parsing import IngestLimits, parse_post
    from herald.enrichment.pipeline import enrich
    out["import_s"] = time.perf_counter() - t
    def run():
        post = parse_post(body, "json", IngestLimits())
        return enrich(post.text, title=post.title, tags=post.tags, lang=post.lang, fmt="json")
    t = time.perf_counter(); run(); out["first_s"] = time.perf_counter() - t
    t = time.perf_counter(); run(); out["second_s"] = time.perf_counter() - t
else:  # steps: the first call of each step alone, in pipeline order
    from herald.enrichment import text as tx
    from herald.enrichment.countries import find_countries
    from herald.enrichment.language import detect_language
    from herald.enrichment.links import extract_links
    from herald.enrichment.topics import classify_topics
    out["import_s"] = time.perf_counter() - t
    text = tx.normalise(json.loads(body)["text"])
    steps = {
        "text": lambda: (tx.make_title(text), tx.make_excerpt(text), tx.hashtags(text), tx.mentions(text),
                         tx.emoji_in(text), tx.word_count(text), tx.content_hash(text)),
        "links": lambda: extract_links(text),
        "countries": lambda: find_countries(text),
        "language": lambda: detect_language(text),
        "topics": lambda: classify_topics(text, tx.hashtags(text)),
    }
    for name, fn in steps.items():
        t = time.perf_counter(); fn(); first = time.perf_counter() - t
        t = time.perf_counter(); fn(); out[name] = {"first_s": first, "second_s": time.perf_counter() - t}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
with open("/proc/self/status") as status:
    out["maxrss_kb"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps(out))
"""


def _fresh(mode: str, body: bytes) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL, body.decode(), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_calls(body: bytes, runs: int = 3) -> dict[str, Any]:
    """First and second call of the baseline, of Herald, and of each step, in fresh processes."""
    samples: dict[str, list[dict[str, Any]]] = {"baseline": [], "herald": [], "steps": []}
    for _ in range(runs):
        for mode in samples:
            samples[mode].append(_fresh(mode, body))

    def med(mode: str, *path: str) -> float:
        values = []
        for sample in samples[mode]:
            value: Any = sample
            for part in path:
                value = value[part]
            values.append(float(value))
        return statistics.median(values)

    result: dict[str, Any] = {}
    for mode in ("baseline", "herald"):
        result[mode] = {
            "import_ms": med(mode, "import_s") * 1e3,
            "first_ms": med(mode, "first_s") * 1e3,
            "second_ms": med(mode, "second_s") * 1e3,
            "maxrss_mib": med(mode, "maxrss_kb") / 1024,
        }
    result["steps"] = {
        step: {
            "first_ms": med("steps", step, "first_s") * 1e3,
            "second_ms": med("steps", step, "second_s") * 1e3,
        }
        for step in STEPS
    }
    result["runs"] = runs
    return result


# -- the measurement -------------------------------------------------------------------------------


def measure(corpus: Sequence[CorpusPost], repeat: int = 5, first_call_runs: int = 3) -> dict[str, Any]:
    """Baseline versus Herald per post, the steps, and the first call; a JSON-able dict."""
    bodies = [p.body for p in corpus]
    baseline, herald = baseline_fn(), herald_fn()
    for body in bodies:  # the same input really is valid on both sides
        baseline(body)
        herald(body)
    cases: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]] = {
        "baseline": (baseline, bodies),
        "herald": (herald, bodies),
    }
    main = time_interleaved(cases, repeat)
    parts = step_cases(bodies)
    steps = time_interleaved(parts, repeat)
    base, full = main["baseline"], main["herald"]
    steps_out: dict[str, Any] = {}
    for name, timed in steps.items():
        inputs = len(parts[name][1])
        # Per corpus post: the language step runs only on the posts that do not declare a language.
        per_corpus_post = timed.us_per_post * inputs / len(bodies)
        steps_out[name] = {
            "us_per_call": timed.us_per_post,
            "calls": inputs,
            "us_per_post": per_corpus_post,
            "share_of_herald": per_corpus_post / full.us_per_post,
        }
    return {
        "posts": len(bodies),
        "mean_body_bytes": sum(len(b) for b in bodies) / len(bodies),
        "repeat": repeat,
        "baseline_us": base.us_per_post,
        "herald_us": full.us_per_post,
        "ratio": full.us_per_post / base.us_per_post,
        "baseline_posts_per_s": base.posts_per_s,
        "herald_posts_per_s": full.posts_per_s,
        "runs_us": {"baseline": list(base.runs_us), "herald": list(full.runs_us)},
        "spread": {name: (max(t.runs_us) - min(t.runs_us)) / t.us_per_post for name, t in main.items()},
        "steps": steps_out,
        "steps_sum_us": sum(steps_out[s]["us_per_post"] for s in STEPS),
        "language_detected_posts": steps_out["language"]["calls"],
        "first_call": first_calls(bodies[0], first_call_runs) if first_call_runs else None,
    }
