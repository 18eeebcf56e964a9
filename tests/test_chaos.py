"""A short seeded run of the fault harness (``bench/chaos.py``): ingress, two workers, a
private Redis with AOF and PostgreSQL, every kind of fault at least once, commands, forwards
and edits in private chats and a group with digests on, and the checker's verdict: each
request answered exactly once, in order; the group's messages all kept, none of the member
who opted out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import FAULTS, chaos_run


@pytest.mark.timeout(600)
async def test_a_seeded_fault_schedule_keeps_exactly_once_and_order(tmp_path: Path) -> None:
    report = await chaos_run(
        seed=7,
        chats=16,
        seconds=40,
        workers=2,
        kinds=list(FAULTS),
        every=4.0,
        requests_per_chat=3,
        drain_seconds=150,
        logs=tmp_path / "logs",
    )
    kinds = {fault for _, fault, _ in report["faults"]}
    assert kinds == set(FAULTS), f"every kind of fault happened: {report['faults']}"
    assert report["requests"] == 48
    traffic = report["traffic"]
    assert traffic["forward"] and traffic["edit"] and traffic["group"] and traffic["group edit"]
    group = report["group"]
    assert group["opted_out_kept"] == 0 and group["ok"], group
    assert report["ok"], report
