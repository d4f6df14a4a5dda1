"""Deterministic trace and span ids for no-code events, so posting an event again writes the same
span (which the warehouse keeps once) and every event of one run lands in one trace.

All are SHA-256 of a purpose and the caller's own ids, cut to OTLP's sizes (16 and 8 bytes). The
run id is the caller's and stays readable: every span also carries it as `wrm.run.id`.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(("wrm.events", *parts)).encode()).digest()


def trace_id(run_id: str) -> bytes:
    return _digest("trace", run_id)[:16]


def run_span_id(run_id: str) -> bytes:
    """The run span: written by run.completed / run.failed / run.canceled."""
    return _digest("run", run_id)[:8]


def anchor_span_id(run_id: str) -> bytes:
    """A span never written: the parent of `*.started` markers, so that they are neither the run's
    root (a root would be taken for the run span and end the run) nor a child of the run span
    (a direct child of the run span is a step)."""
    return _digest("anchor", run_id)[:8]


def run_started_id(run_id: str) -> bytes:
    return _digest("run.started", run_id)[:8]


def step_span_id(run_id: str, step_key: str, attempt: int) -> bytes:
    """One attempt of one step: written by step.completed, step.failed or human.decided."""
    return _digest("step", run_id, step_key, str(attempt))[:8]


def step_started_id(run_id: str, step_key: str, attempt: int) -> bytes:
    return _digest("step.started", run_id, step_key, str(attempt))[:8]


def once_id(run_id: str, kind: str, event_id: str | None, time_ns: int) -> bytes:
    """An event that can happen many times in a run (a wait for a person, a decision without a
    step): its own event_id when it has one, else its time."""
    return _digest(kind, run_id, event_id if event_id is not None else f"t{time_ns}")[:8]
