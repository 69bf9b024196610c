"""The members bench on a small burst: what it reports of joins, leaves and the counter is what
a correct design needs, and the count it reads back is exact (structure and counts, no timings)."""

from __future__ import annotations

from herald_tools.bench import report
from herald_tools.bench.members import LEAST_JOIN, LEAST_LEAVE, run_members_bench


def test_the_members_bench_counts_what_joins_and_leaves_write() -> None:
    r = run_members_bench(joins=40, repeats=8)
    assert r["statuses"] == {"201": 40} and r["errors"] == {"join": 0, "repeat": 0, "leave": 0}
    join, leave = r["join"], r["leave"]
    assert join["calls"] == {"PutItem": 2.0}  # the community was read by the warm-up join
    for key, least in LEAST_JOIN.items():
        assert join[key] == least, key
    assert leave["calls"] == {"DeleteItem": 2.0}
    for key, least in LEAST_LEAVE.items():
        assert leave[key] == least, key
    # A repeat: the claim's put fails (billed), the claim and the member are read, the member put.
    assert r["repeat"]["calls"] == {"GetItem": 2.0, "PutItem": 2.0} and r["repeat"]["write_units"] == 3.0
    counter = r["counter"]
    # 41 joins (the warm-up's too), 8 repeats, 4 leaves: one batch, a transaction per shard touched.
    assert counter["batches"] == [53] and set(counter["calls"]) == {"TransactWriteItems"}
    transactions = counter["calls"]["TransactWriteItems"]
    assert counter["items"] == 2 * transactions and counter["write_units"] == 4 * transactions
    assert r["counted"] == r["members_in_table"] == r["members_expected"] == 41 - 4 and r["count_exact"]
    block = "\n".join(report._members(r))
    assert "| new join | PutItem 2 | 2.00 | 2.00 | 3.00 |" in block and ": exact." in block
