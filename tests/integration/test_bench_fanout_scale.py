"""The end-to-end fan-out bench on a tiny community (200 members, 1 ms per push): every member pushed
once, and the counts agree with each other (structure, not timings)."""

from __future__ import annotations

from pathlib import Path

from herald_tools.bench import fanout_scale


def test_a_tiny_fanout_end_to_end(tmp_path: Path) -> None:
    r = fanout_scale.run_fanout_scale(200, latency_s=0.001, senders=4, baseline_pushes=0)
    pushed, senders, planner = r["push_service"], r["senders_run"], r["planner"]
    assert pushed["of_the_post"] == pushed["decrypted"] == 200
    assert pushed["duplicates"] == 0 and pushed["missed"] == 0 and pushed["rejected"] == 0
    assert senders["error_count"] == 0 and senders["left_on_queue"] == 0
    assert r["targets"] == 200 and senders["sent"] == 200
    # The counts agree with each other: calls by operation, writes, per push and per 1,000.
    for side in (planner, senders):
        ops = side["dynamodb"]
        assert side["calls"] == sum(ops.values()) + sum(side["sqs"].values()) + sum(side["other"].values())
        assert side["calls_per_1000_members"] == round(side["calls"] / 200 * 1000, 2)
        single = sum(ops.get(op, 0) for op in ("PutItem", "UpdateItem", "DeleteItem"))
        batched = ops.get("BatchWriteItem", 0) + ops.get("TransactWriteItems", 0)
        assert single <= side["dynamodb_writes"] and (batched or side["dynamodb_writes"] == single)
        assert side["wru"] >= side["dynamodb_writes"]
    assert planner["dynamodb"].get("Query", 0) >= 1 and planner["sqs"]["SendMessageBatch"] >= 1
    assert senders["dynamodb_writes"] >= 1
    assert r["writes_per_push"] == round(senders["dynamodb_writes"] / 200, 3)
    assert r["push_jobs"] >= 200 / r["deployment"]["planner"]["members_per_job"]
    small, large = r["extrapolation"]
    assert (small["members"], large["members"]) == fanout_scale.TARGETS
    assert 0 < small["usd_total"] < large["usd_total"] and 0 < small["last_push_s"] < large["last_push_s"]
    block = "\n".join(fanout_scale.render(r))
    assert "repeats at the push service **0**" in block and "members missed **0**" in block
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n", encoding="utf-8")
    fanout_scale.update_doc(doc, block, "Run of now.")
    fanout_scale.update_doc(doc, block, "Run of later.")
    text = doc.read_text(encoding="utf-8")
    assert "kept" in text and text.count(fanout_scale.BEGIN) == 1 and "Run of later." in text
