"""Run and step statuses: their one definition in Python. Every module that names a status imports
it from here.

The SQL that derives them (the run assembly and span-facts views under sql/) spells the same
strings; tests/test_statuses.py checks that both say the same.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# What run assembly stores in runs.status. A run is `running` until its run span arrives,
# `waiting_human` while a human-in-the-loop request has no decision yet, then finished.
StoredRunStatus = Literal["running", "waiting_human", "completed", "failed", "canceled"]
# What the API shows: a stored status, or `cancel_requested` while a cancel action waits for the
# engine (a live run whose cancel the engine acknowledged shows `canceled`).
RunStatus = Literal[StoredRunStatus, "cancel_requested"]

STORED_RUN_STATUSES: Final[tuple[StoredRunStatus, ...]] = get_args(StoredRunStatus)
RUN_STATUSES: Final[tuple[RunStatus, ...]] = (*STORED_RUN_STATUSES, "cancel_requested")
LIVE_RUN_STATUSES: Final[tuple[StoredRunStatus, ...]] = ("running", "waiting_human")
FINISHED_RUN_STATUSES: Final[tuple[StoredRunStatus, ...]] = ("completed", "failed", "canceled")

# What span facts and steps store in status (a CI/CD task may be skipped).
StepStatus = Literal["completed", "failed", "canceled", "skipped"]
STEP_STATUSES: Final[tuple[StepStatus, ...]] = get_args(StepStatus)
