"""The bench of the fan-out with language variants against without, on a small community: the same
members pushed once each, in their languages, for the same AWS calls (structure, not timings)."""

from __future__ import annotations

from herald_tools.bench import fanout


def test_variants_cost_the_same_calls_in_one_run() -> None:
    cases = fanout.run_variant_calls(members=240, shards=2)
    plain, varied = cases["without variants"], cases["with 3 variants"]
    assert plain["pushes_received"] == varied["pushes_received"] == 240
    assert plain["languages"] == {"en": 240}
    assert varied["languages"] == {"en": 120, "fr": 40, "ar": 40, "es": 40}
    assert varied["planner_by_operation"] == plain["planner_by_operation"]
    assert varied["sender_by_operation"] == plain["sender_by_operation"]
    assert varied["planner_calls_per_1000"] == plain["planner_calls_per_1000"] > 0
    assert varied["push_jobs"] == plain["push_jobs"]
    # A member reading a variant adds its language code; the texts travel once per job.
    assert 0 < varied["push_job_bytes_per_member"] - plain["push_job_bytes_per_member"] < 20
    assert fanout.render_variant_calls(cases)[2].startswith("| without variants | 240 |")
