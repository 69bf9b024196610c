"""The numbers section of docs/benchmarks.md, rendered from one run's results.

Only the text between :data:`BEGIN` and :data:`END` is rewritten; everything around it is kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:numbers:begin (rewritten by `make bench`; edit outside these markers) -->"
END = "<!-- bench:numbers:end -->"


def _f(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"**{value:,.2f}×**"


def run_line(results: dict[str, Any]) -> str:
    """When, where and how the numbers were measured."""
    env = results["environment"]
    return (
        f"Run of {env['date']} on {env['machine']}: {env['cores']} cores, Python {env['python']}, "
        f"{env['platform']}; `{env['command']}`, {env['duration_s']:.0f} s in all."
    )


def render(results: dict[str, Any]) -> str:
    lines = [run_line(results), ""]
    if "throughput" in results:
        lines += _throughput(results["throughput"])
    if "imports" in results:
        lines += _imports(results["imports"], results.get("first_invocation"))
    if "aws_calls" in results:
        lines += _aws_calls(results["aws_calls"])
    if "site" in results:
        lines += _site(results["site"])
    if "members" in results:
        lines += _members(results["members"])
    if "fanout" in results:
        from herald_tools.bench.fanout import render as render_fanout

        lines += render_fanout(results["fanout"])
    return "\n".join(lines).rstrip() + "\n"


def _throughput(r: dict[str, Any]) -> list[str]:
    out = [
        "### 1. Enrich + validate, per post (one core)",
        "",
        f"{r['posts']:,} posts (mean JSON body {r['mean_body_bytes']:.0f} bytes), median of {r['repeat']} "
        "passes after a warm-up pass, both sides interleaved in one process.",
        "",
        "| | µs per post | posts/s per core | ratio to baseline |",
        "|---|---:|---:|---:|",
        f"| baseline: `json.loads` + `PostInput.model_validate` | {_f(r['baseline_us'], 2)} | "
        f"{_f(r['baseline_posts_per_s'], 0)} | 1.00× |",
        f"| Herald: `parse_post` + `enrich` | {_f(r['herald_us'])} | {_f(r['herald_posts_per_s'], 0)} | "
        f"{_ratio(r['ratio'])} |",
        "",
        f"Spread of the passes (max − min, over the median): baseline {r['spread']['baseline']:.1%}, "
        f"Herald {r['spread']['herald']:.1%}.",
        "",
        "Where Herald's time goes (each part timed alone on the same posts; `language` runs only on the "
        f"{r['language_detected_posts']:,} posts that declare no `lang`):",
        "",
        "| part | µs per call | calls | µs per corpus post | share of Herald's time |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, step in r["steps"].items():
        out.append(
            f"| `{name}` | {_f(step['us_per_call'])} | {step['calls']:,} | {_f(step['us_per_post'])} | "
            f"{step['share_of_herald']:.0%} |"
        )
    out += [
        "",
        f"The five enrichment steps add up to {_f(r['steps_sum_us'])} µs per post; the rest of `enrich` "
        "is building the `Enrichment` model and the glue.",
        "",
    ]
    first = r.get("first_call")
    if first:
        b, h = first["baseline"], first["herald"]
        out += [
            f"First call in a fresh process (median of {first['runs']} processes): the one-off loading "
            "of the models and tables.",
            "",
            "| | import ms | first call ms | second call ms | peak RSS MiB |",
            "|---|---:|---:|---:|---:|",
            f"| baseline | {_f(b['import_ms'])} | {_f(b['first_ms'], 2)} | {_f(b['second_ms'], 3)} | "
            f"{_f(b['maxrss_mib'])} |",
            f"| Herald | {_f(h['import_ms'])} | {_f(h['first_ms'])} | {_f(h['second_ms'], 3)} | "
            f"{_f(h['maxrss_mib'])} |",
            f"| ratio | {_ratio(h['import_ms'] / b['import_ms'])} | – | – | "
            f"{_ratio(h['maxrss_mib'] / b['maxrss_mib'])} |",
            "",
            "| step | first call ms | second call ms |",
            "|---|---:|---:|",
        ]
        for name, step in first["steps"].items():
            out.append(f"| `{name}` | {_f(step['first_ms'])} | {_f(step['second_ms'], 3)} |")
        out.append("")
    return out


def _imports(r: dict[str, Any], cold: dict[str, Any] | None) -> list[str]:
    app, base, bare = r["app"], r["baseline"], r["interpreter"]
    loads = (
        ", ".join(name for name in ("boto3", "botocore", "pydantic") if app[f"loads_{name}"])
        or "none of them"
    )
    out = [
        "### 2. Import of the ingest handler (fresh process)",
        "",
        f"Median of {r['runs']} fresh processes each, after a warm-up run (`.pyc` written).",
        "",
        "| | import ms | peak RSS MiB | modules loaded |",
        "|---|---:|---:|---:|",
        f"| baseline: `import boto3, pydantic` | {_f(base['ms'])} | {_f(base['hwm_mib'])} "
        f"| {base['modules']} |",
        f"| `import app` (functions/ingest) | {_f(app['ms'])} | {_f(app['hwm_mib'])} | {app['modules']} |",
        f"| ratio | {_ratio(r['ratio'])} | {_ratio(r['memory_ratio'])} | – |",
        f"| (the interpreter alone, `pass`) | – | {_f(bare['hwm_mib'])} | {bare['modules']} |",
        "",
        f"Of boto3, botocore and pydantic, `import app` loads: {loads}.",
        "What `app` itself imports, by cumulative time (`-X importtime`, one run):",
        "",
        "| module | cumulative ms |",
        "|---|---:|",
    ]
    out += [f"| `{row['module']}` | {_f(row['cumulative_ms'])} |" for row in r["heaviest"]]
    out.append("")
    functions = r.get("functions")
    if functions:
        out += [
            f"Every function's `import app` (tracing off), in the same run, against the same baseline "
            f"(worst: {_ratio(r['worst_ratio'])}). CPU ms is the process's own time (the baseline's: "
            f"{_f(r['baseline'].get('cpu_ms'))} ms), which other work on the machine inflates less:",
            "",
            "| function | import ms | ratio | CPU ms | CPU ratio | peak RSS MiB | modules | loads |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, row in functions.items():
            loaded = ", ".join(n for n in ("boto3", "botocore", "pydantic") if row[f"loads_{n}"]) or "–"
            out.append(
                f"| `{name}` | {_f(row['ms'])} | {_ratio(row['ratio'])} | {_f(row.get('cpu_ms'))} | "
                f"{_ratio(row.get('cpu_ratio'))} | {_f(row['hwm_mib'])} | {row['modules']} | {loaded} |"
            )
        out.append("")
    if cold:
        out += [
            f"First invocation in a fresh process, on in-process moto (median of {cold['runs']}; "
            "moto has already imported boto3 and botocore):",
            "",
            "| | ms |",
            "|---|---:|",
            f"| import of `app` | {_f(cold['import_ms'])} |",
            f"| first record (clients, settings, language model, tables) | {_f(cold['first_record_ms'])} |",
            f"| second record (warm) | {_f(cold['warm_record_ms'])} |",
            f"| first record over warm record | {_ratio(cold['first_over_warm'])} |",
            f"| first record less warm record (ms) | {_f(cold.get('first_minus_warm_ms'))} |",
            f"| import + first record over warm record | {_ratio(cold['cold_over_warm'])} |",
            "",
            f"Resident memory the function added in that process: {_f(cold['rss_added_mib'])} MiB.",
            "",
        ]
    return out


def _aws_calls(r: dict[str, Any]) -> list[str]:
    out = [
        "### 3. AWS calls per post (moto, counted on the handler's clients)",
        "",
        f"{r['singles']} single posts, then edits, unchanged re-uploads, duplicates, deletes and "
        f"rejections of some of them; then one export of {r['export_posts']} posts, uploaded twice.",
        "",
        "| event | events | posts | calls | calls per post | least possible per post | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in r["scenarios"]:
        out.append(
            f"| {s['name']} | {s['events']} | {s['posts']} | {s['calls']} | {_f(s['calls_per_post'], 3)} | "
            f"{_f(s['minimum_per_post'], 3)} | {_ratio(s['ratio'])} |"
        )
    out += ["", "Calls by operation:", "", "| event | calls |", "|---|---|"]
    for s in r["scenarios"]:
        ops = ", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in s["by_operation"].items())
        extra = ""
        if s["attempts"] != s["calls"]:
            extra = f" ({s['attempts']} HTTP attempts)"
        if s["failures"]:
            extra += f" — {s['failures']} record(s) failed"
        out.append(f"| {s['name']} | {ops}{extra} |")
    out.append("")
    statuses = "; ".join(
        f"{s['name']}: " + ", ".join(f"{k} {v}" for k, v in s["statuses"].items()) for s in r["scenarios"]
    )
    out += [f"Outcomes recorded: {statuses}.", ""]
    for note in r.get("notes") or []:
        out += [f"Note: {note}.", ""]
    return out


def _site(r: dict[str, Any]) -> list[str]:
    writes = r["incremental_writes"]
    return [
        "### 4. The public site's renderer (`herald.site`, one core)",
        "",
        f"A community of {r['posts']:,} posts ({r['page_size']} per archive page, {r['feed_size']} in the "
        "feeds); best of 3 runs, the renderer's memo caches emptied before each.",
        "",
        "| measure | value | baseline | ratio |",
        "|---|---:|---:|---:|",
        f"| one post page | {_f(r['post_page_us'])} µs | `json.dumps` of the post: "
        f"{_f(r['baseline_json_dumps_us'])} µs | {_ratio(r['post_page_vs_json_dumps'])} |",
        f"| one post page | {_f(r['post_page_us'])} µs | minimal Jinja2 page (title only): "
        f"{_f(r['baseline_minimal_template_us'])} µs | {_ratio(r['post_page_vs_minimal_template'])} |",
        f"| whole site: {r['full_site_files']:,} files, {_f(r['full_site_mb'])} MB | "
        f"{_f(r['full_site_s'], 2)} s | `json.dumps` of every post: "
        f"{_f(r['baseline_json_dumps_all_s'], 2)} s | {_ratio(r['full_site_vs_json_dumps_all'])} |",
        f"| one new post (`render_changes`) | {_f(r['incremental_one_post_ms'])} ms, {len(writes)} files | "
        f"the whole site: {_f(r['full_site_s'], 2)} s | full is {_f(r['full_over_incremental'])}× slower |",
        f"| first page of a process (templates, locale data) | {_f(r['first_call_ms'])} ms, once | | |",
        "",
        f"Files one new post rewrites: {', '.join(f'`{w}`' for w in writes)}. Every file whose bytes differ "
        "between full renders before and after it is among them: "
        f"{'yes' if r['incremental_covers_all_changes'] else '**no**'}.",
        "",
    ]


def _members(r: dict[str, Any]) -> list[str]:
    def calls(row: dict[str, Any]) -> str:
        return ", ".join(f"{op} {n:g}" for op, n in row["calls"].items()) or "none"

    def least(kind: str) -> str:
        need = r["least"][kind]
        return (
            f"{need['write_calls']} write calls, {need['items_written']} items, {need['write_units']} units"
        )

    def ratio(row: dict[str, Any], kind: str | None) -> str:
        return _ratio(row["write_units"] / r["least"][kind]["write_units"]) if kind else "–"

    rows = [("new join", r["join"], "join"), ("repeat join (the member's token)", r["repeat"], None)]
    rows.append(("leave", r["leave"], "leave"))
    c = r["counter"]
    batches = ", ".join(f"{n:,}" for n in c["batches"])
    errors = r["errors"]
    count = "exact" if r["count_exact"] else "**WRONG**"
    return [
        "### 5. Members: joins through the API handler (moto in-process, one core)",
        "",
        f"{r['joins']:,} new joins one after another through the handler (a burst on one execution "
        f"environment), then {r['repeats']:,} repeat joins with the member's token and {r['leaves']:,} "
        "leaves; then the member counter function over the members table's stream, with the event "
        "source template.yaml gives it. moto as the local cloud runs it (`moto_patches`: a transaction "
        "copies the items it touches, not the tables). Write units as DynamoDB bills them: 1 per KB of "
        "the item (the larger of before and after), twice inside a transaction, the member's `gsi1` "
        "entry once more; calls on every table, items and units on the members table.",
        "",
        "| per request | DynamoDB calls | write calls | items written | write units "
        "| the least a correct design needs | units against the least |",
        "|---|---|---:|---:|---:|---|---:|",
        *(
            f"| {name} | {calls(row)} | {_f(row['write_calls'], 2)} | {_f(row['items_written'], 2)} | "
            f"{_f(row['write_units'], 2)} | {least(kind) if kind else '–'} | {ratio(row, kind)} |"
            for name, row, kind in rows
        ),
        "",
        "The least: a join writes its subscription's claim and its member, each once under a condition "
        "(one transaction of both would be 1 call at twice the units); a leave deletes the member (its "
        "delete answers with the claims it held) and its claim; the count is not written by either.",
        "",
        f"The counter: {len(c['batches'])} batch{'es' if len(c['batches']) > 1 else ''} ({batches} records), "
        f"{', '.join(f'{op} {n:,}' for op, n in c['calls'].items())}; {c['items']:,} items, "
        f"{c['write_units']:,} write units: **{_f(c['write_units_per_1000_joins'])} per 1,000 joins** "
        "(one transaction of a marker and an `ADD` per counter shard a batch touches, 4 units), "
        f"{c['seconds']:.2f} s.",
        "",
        "| time per request | all (wall) | in DynamoDB calls (wall; moto here) "
        "| the handler's own CPU (Herald, Powertools, building the requests) |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {_f(row['ms'], 2)} ms | {_f(row['ms_in_dynamodb'], 2)} ms | "
            f"{_f(row['handler_cpu_ms'], 2)} ms |"
            for name, row, _ in rows
        ),
        "",
        f"Joins: **{_f(r['join']['per_s'])}/s** through the handler; a bare `put_item` on the same moto: "
        f"{_f(r['baseline_put_item_per_s'])}/s (a join takes {_ratio(r['join_time_vs_put_item'])} one "
        f"put). Statuses of the joins: {r['statuses']}; errors: {errors['join']} joins, "
        f"{errors['repeat']} repeats, {errors['leave']} leaves. Count at the end: {r['counted']:,}, "
        f"members in the table {r['members_in_table']:,}, expected {r['members_expected']:,} (the "
        f"warm-up join's member included): {count}.",
        "",
    ]


def write_block(path: Path, begin: str, end: str, body: str, *, new_page: str = "# Benchmarks\n") -> None:
    """Replace the text between the markers ``begin`` and ``end`` of ``path`` with ``body`` (the
    block appended if missing, the page created as ``new_page`` if missing); the rest is kept."""
    block = f"{begin}\n\n{body.rstrip()}\n\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else new_page
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def update_doc(path: Path, section: str, *, partial: bool = False) -> None:
    """Replace the numbers section of ``path`` (created with a short header if missing). ``partial``:
    the run measured only some parts: their subsections replace the ones of the same heading, each
    under its own run line, and the other parts' subsections stay as they were."""
    if partial and path.exists():
        text = path.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            old = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
            section = merge_sections(old, section)
    write_block(path, BEGIN, END, section, new_page="# Benchmarks\n\n## Numbers of the last run\n\n")


def _subsections(body: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first ``### `` heading, and each (heading, its text) in order."""
    parts = re.split(r"(?m)^(?=### )", body)
    head, found = parts[0], []
    for part in parts[1:]:
        heading = part.split("\n", 1)[0]
        found.append((heading, part))
    return head, found


def merge_sections(old: str, new: str) -> str:
    """``old``'s subsections with those ``new`` has replaced (each marked with ``new``'s run line),
    in ``old``'s order, new headings at the end; ``old``'s run line kept at the top."""
    old_head, old_parts = _subsections(old)
    new_head, new_parts = _subsections(new)
    run = new_head.strip()
    fresh = {heading: text for heading, text in new_parts}
    out = [old_head.rstrip() + "\n\n"]
    for heading, text in old_parts:
        out.append(_marked(heading, fresh.pop(heading), run) if heading in fresh else text)
    out += [_marked(heading, text, run) for heading, text in fresh.items()]
    # One blank line between subsections, whichever run wrote each (a run's last one ends bare).
    return "".join(part.rstrip("\n") + "\n\n" for part in out).rstrip() + "\n"


def _marked(heading: str, text: str, run: str) -> str:
    rest = text.split("\n", 1)[1] if "\n" in text else ""
    return f"{heading}\n\nThis subsection alone: {run[0].lower() + run[1:]}\n{rest}"
