"""The arithmetic of the end-to-end fan-out bench (its run: tests/integration/test_bench_fanout_scale.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from herald_tools.bench.fanout_scale import PRICES, Measured, extrapolate, item_bytes, vcpu

MEASURED = Measured(
    sender_cpu_s_per_push=0.001,
    planner_cpu_s_per_member=0.00002,
    pushes_per_member=1.0,
    sender_wru_per_push=0.05,
    sender_rru_per_push=0.0,
    planner_wru_per_member=0.001,
    planner_rru_per_member=0.25,
    sqs_billed_per_member=0.005,
    push_job_bytes_per_member=300.0,
    planner_calls_per_member=0.005,
    planner_fixed_jobs=33,
    latency_s=0.05,
    sender_memory_mb=1769,
    sender_threads=16,
    sender_concurrency=50,
    sender_batch_size=2,
    planner_memory_mb=1769,
    planner_concurrency=32,
    planner_batch_size=5,
    shards=32,
    page_size=1000,
    members_per_job=100,
)


def test_extrapolate_is_the_stated_arithmetic() -> None:
    (e,) = extrapolate(MEASURED, [1_000_000])
    # One vCPU at 1,769 MB: windows of 16 pushes, each 50 ms + 16 x 1 ms: 242.4/s, under the
    # CPU's 1,000/s.
    rate = 16 / (0.05 + 16 * 0.001)
    assert e.sender_pushes_per_s_each == round(rate, 1)
    sending = 1_000_000 / (rate * 50)
    assert e.sending_s == pytest.approx(sending, abs=0.051)
    # 1,000 pages over 32 shards at once: 32 rounds of (20 ms of CPU + 5 calls of 10 ms).
    page = 0.02 + 5 * 0.01
    assert e.planning_s == round(32 * page, 1)
    assert e.last_push_s == round(max(32 * page, page + sending) + 100 / rate, 1)
    gb_s = 1_000_000 / rate * 1769 / 1024 + 1000 * page * 1769 / 1024
    assert e.lambda_gb_s == round(gb_s, 1)
    assert e.lambda_requests == 10_000 // 2 + math.ceil((1000 + 33) / 5)
    assert e.wru == 50_000 + 1_000 and e.rru == 250_000
    usd_ddb = 51_000 * 0.625 / 1e6 + 250_000 * 0.125 / 1e6
    assert e.usd_dynamodb == round(usd_ddb, 4)
    # SQS: the sends (5,000), then per batch of 2 jobs (60 KB: one chunk) a receive and a delete,
    # and the planner's jobs received and deleted 5 at a time.
    assert e.sqs_requests == 5_000 + 2 * 5_000 + 2 * math.ceil(1033 / 5)
    assert e.usd_sqs == round(e.sqs_requests * 0.40 / 1e6, 4)
    usd_lambda = gb_s * PRICES["lambda_gb_s"]["usd"] + e.lambda_requests * 0.20 / 1e6
    assert e.usd_lambda == round(usd_lambda, 4)
    assert e.usd_total == round(usd_lambda + usd_ddb + e.sqs_requests * 0.40 / 1e6, 4)


def test_extrapolate_slows_a_small_sender_by_its_cpu_share() -> None:
    small = replace(MEASURED, sender_memory_mb=512, sender_cpu_s_per_push=0.002)
    (e,) = extrapolate(small, [222_000])
    assert vcpu(512) == pytest.approx(512 / 1769)
    # A window of 16 is 16 pushes' CPU at 0.29 vCPU (111 ms) on top of the 50 ms: about 100/s,
    # under the CPU's own bound of about 145/s.
    rate = 16 / (0.05 + 16 * 0.002 / vcpu(512))
    assert e.sender_pushes_per_s_each == round(rate, 1) and rate < vcpu(512) / 0.002
    big, huge = extrapolate(small, [222_000, 10_000_000])
    assert huge.usd_total > big.usd_total * 40 and huge.last_push_s > big.last_push_s * 40


def test_item_size_counts_names_and_values() -> None:
    item = {"pk": {"S": "P#é"}, "n": {"N": "12345"}, "ok": {"BOOL": True}, "m": {"M": {"a": {"S": "xy"}}}}
    # pk 2 + 4 bytes; n 1 + 4 (5 digits); ok 2 + 1; m 1 + 3 + (1 + 2)
    assert item_bytes(item) == 6 + 5 + 3 + 7
