"""The public site's renderer: per post page, the whole site of a 10,000-post community, one new post.

Each number is the best of ``repeat`` runs, the renderer's memo caches emptied before each;
``first_call_ms`` is the one-time cost of a process's first page (template compilation, locale
data). Baselines, measured in the same run on the same posts: ``json.dumps`` of each post's stored
fields (the cheapest thing a publisher could write per post), and a minimal Jinja2 template holding
only the post's escaped title (the floor of any templated page).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from herald_tools.bench.corpus import DEFAULT_SEED, build_corpus

BASE_URL = "https://site.example/bench/"
API_URL = "https://api.example/prod"
UNIQUE_TEXTS = 400


def _forget() -> None:
    """Empty the renderer's memo caches (dates, link patterns), so every run pays for them."""
    from herald.content.formats import text
    from herald.site import render

    render._format_date.cache_clear()
    text._link_pattern.cache_clear()


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        _forget()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def build_posts(n: int, seed: int = DEFAULT_SEED) -> list[Any]:
    """``n`` stored posts (one pinned): the corpus's texts enriched, reused with new ids and dates."""
    from herald.content.models import Post
    from herald.enrichment.pipeline import enrich

    fmt = "txt"
    corpus = build_corpus(min(n, UNIQUE_TEXTS), seed)
    enriched = []
    for item in corpus:
        document = json.loads(item.body)
        e = enrich(document["text"], title=document.get("title"), tags=document.get("tags", []), fmt=fmt)
        enriched.append((e, document))
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    posts = []
    for i in range(n):
        e, document = enriched[i % len(enriched)]
        at = start + timedelta(minutes=37 * i + rng.randint(0, 30))
        posts.append(
            Post(
                id=f"{i:020x}",
                community="bench",
                key=f"posts/bench/{i}.json",
                format=fmt,
                title=e.title,
                text=e.text,
                excerpt=e.excerpt,
                links=e.links,
                hashtags=e.hashtags,
                mentions=e.mentions,
                emoji=e.emoji,
                countries=e.countries,
                language=e.language,
                topics=e.topics,
                tags=list(document.get("tags", [])),
                word_count=e.word_count,
                reading_time_s=e.reading_time_s,
                content_hash=e.content_hash,
                pinned=i == 1,
                created_at=at,
                updated_at=at,
            )
        )
    return posts


def run_site_bench(n: int = 10_000, *, repeat: int = 3, sample: int = 500, seed: int = DEFAULT_SEED) -> dict:
    """Render times of the site, with baselines and ratios (all times in seconds unless ``_us``/``_ms``)."""
    from jinja2 import Environment

    from herald.site import CommunityView, SiteRenderer

    posts = build_posts(n, seed)
    community = CommunityView(
        id="bench",
        name="Bench Community 🌍",
        description="Posts generated for the benchmark.",
        verified=True,
        members=222_000,
        posts=n,
        created_year=2020,
        join_url="https://site.example/bench/join",
    )
    renderer = SiteRenderer(BASE_URL, api_url=API_URL, locale="en")
    few = posts[:sample]
    start = time.perf_counter()
    renderer.render_post(community, posts[0])  # templates compiled, locale data loaded
    first_call_s = time.perf_counter() - start

    post_page_s, _ = _best(lambda: [renderer.render_post(community, p) for p in few], repeat)
    dumps_s, _ = _best(
        lambda: [json.dumps(p.model_dump(mode="json"), ensure_ascii=False).encode() for p in few], repeat
    )
    minimal = Environment(autoescape=True).from_string(
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>{{ t }}</title><h1>{{ t }}</h1></html>'
    )
    minimal_s, _ = _best(lambda: [minimal.render(t=p.title).encode() for p in few], repeat)

    full_s, files = _best(lambda: renderer.render_community(community, posts), repeat)
    total_bytes = sum(len(f.body) for f in files.values())
    full_dumps_s, _ = _best(
        lambda: [json.dumps(p.model_dump(mode="json"), ensure_ascii=False).encode() for p in posts], 1
    )

    newest = max(posts, key=lambda p: p.created_at)
    new_at = newest.created_at + timedelta(minutes=5)
    new_post = posts[5].model_copy(update={"id": "f" * 20, "created_at": new_at, "updated_at": new_at})
    after = [*posts, new_post]
    incremental_s, changes = _best(lambda: renderer.render_changes(community, after, {new_post.id}), repeat)
    full_after = renderer.render_community(community, after)
    really_changed = sorted(
        path for path, f in full_after.items() if path not in files or files[path].body != f.body
    )

    per_post_us = post_page_s / len(few) * 1e6
    return {
        "posts": n,
        "page_size": renderer.page_size,
        "feed_size": renderer.feed_size,
        "first_call_ms": round(first_call_s * 1e3, 1),
        "post_page_us": round(per_post_us, 1),
        "baseline_json_dumps_us": round(dumps_s / len(few) * 1e6, 1),
        "baseline_minimal_template_us": round(minimal_s / len(few) * 1e6, 1),
        "post_page_vs_json_dumps": round(post_page_s / dumps_s, 1),
        "post_page_vs_minimal_template": round(post_page_s / minimal_s, 1),
        "full_site_s": round(full_s, 3),
        "full_site_files": len(files),
        "full_site_mb": round(total_bytes / 1e6, 2),
        "full_site_vs_json_dumps_all": round(full_s / full_dumps_s, 1),
        "baseline_json_dumps_all_s": round(full_dumps_s, 3),
        "incremental_one_post_ms": round(incremental_s * 1e3, 1),
        "incremental_writes": changes.paths,
        "incremental_deletes": changes.deletes,
        "full_over_incremental": round(full_s / incremental_s, 1),
        "changed_by_full_rerender": really_changed,
        "incremental_covers_all_changes": set(really_changed) <= set(changes.paths),
    }


if __name__ == "__main__":
    print(json.dumps(run_site_bench(), indent=1))
