"""`wrm serve` killed with SIGKILL under load and restarted on the same data, then the restarted
server killed again right after the load's end: every acknowledged span is stored once and every
acknowledged trace becomes a run exactly once, with its steps, and is counted in the summary tier
— found by the last server by itself, without more spans arriving. bench/crash.py is the same
scenario at 20 cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash import run


# `spooled`: acknowledged requests still in the spool at the kill are stored by the restart.
@pytest.mark.parametrize("ack", ["stored", "spooled"])
def test_sigkill_under_load_loses_no_acknowledged_run(tmp_path: Path, ack: str) -> None:
    verdict = run(
        tmp_path / "data",
        cycles=2,  # a kill under load, and one of the restarted server after the load's end
        senders=3,
        spans_per_request=300,
        kill_after_s=(1.0, 3.0),
        settle_timeout_s=45,
        seed=11,
        log_dir=tmp_path,
        ack=ack,
    )
    report = "\n".join(verdict.lines())
    assert not verdict.failures, report
    assert verdict.acked_spans > 0 and verdict.retries > 0, report  # the kills hit requests in flight
    assert verdict.stored_spans == verdict.acked_spans, report
    assert verdict.stored_traces == verdict.acked_traces, report
    assert verdict.traces_without_run == 0, report
    assert verdict.runs == verdict.acked_traces, report
    assert verdict.duplicate_runs == 0, report
    assert verdict.wrong_step_counts == 0, report
    assert verdict.summarized_runs == verdict.runs, report
