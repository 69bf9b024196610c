"""The hostile push service bench on a loopback push service, with a short deadline: every case is
measured and bounded (the bench's own deadline is the sender's 15 s; structure, not timings)."""

from __future__ import annotations

from herald_tools.bench import hostile_push


def test_every_misbehaviour_is_measured_and_cut_off() -> None:
    result = hostile_push.run_hostile_push_bench(deadline_s=0.5)
    cases = result["cases"]
    assert list(cases) == [mode for mode, _ in hostile_push.CASES]
    assert cases["ok"]["outcome"] == "sent" and cases["ok"]["status"] == 201
    for mode in ("huge", "trickle", "trickle-body", "hang"):
        assert cases[mode]["outcome"] == "retry", mode
    assert 0 < cases["huge"]["answer_bytes_read"] <= 64 * 1024  # the size bound, not 200 MB
    assert "deadline" in cases["trickle"]["detail"]
    assert all(row["seconds"] > 0 and row["python_peak_bytes"] > 0 for row in cases.values())
    table = "\n".join(hostile_push.render(result))
    assert table.count("\n| ") == 1 + len(cases)  # the header and one row per case
