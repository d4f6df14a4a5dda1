"""Events the API writes to the outbox itself: action.requested (a re-run or cancel handed to the
engine) and webhook.test (for one subscription). An action is stored before its event; a crash
between the two is made good at the next start (`announce_missing_actions`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from analytics.runs.actions import recent_actions
from analytics.runs.schemas import Action
from analytics.webhooks.schemas import TEST_EVENT
from warehouse import Warehouse
from warehouse.outbox import Outbox, OutboxEvent, event_id


def action_requested(tenant: str, action: Action, workflow: str, environment: str) -> OutboxEvent:
    """The event of a new action; its id is the action's, so a retried request never emits twice."""
    data = {
        "tenant_id": tenant,
        **action.model_dump(mode="json"),
        "workflow": workflow,
        "environment": environment,
    }
    return OutboxEvent(
        tenant_id=tenant,
        event_id=event_id(tenant, action.run_id, "action.requested", action.action_id),
        type="action.requested",
        occurred_at=action.requested_at,
        data=json.dumps(data, separators=(",", ":")),
        run_id=action.run_id,
        workflow=workflow,
        environment=environment,
        status=action.state,
        rank=9,
    )


def ping_event(tenant: str, webhook_id: str) -> OutboxEvent:
    now = datetime.now(UTC)
    data = {
        "tenant_id": tenant,
        "webhook_id": webhook_id,
        "message": "a test event from WRM: the subscription works",
        "sent_at": now.isoformat().replace("+00:00", "Z"),
    }
    return OutboxEvent(
        tenant_id=tenant,
        event_id=event_id(tenant, "", TEST_EVENT, webhook_id, uuid.uuid4().hex),
        type=TEST_EVENT,
        occurred_at=now,
        data=json.dumps(data, separators=(",", ":")),
        webhook_id=webhook_id,
    )


def announce_missing_actions(wh: Warehouse, outbox: Outbox, hours: int = 24) -> int:
    """Write the action.requested events of recent actions that have none: an action stored just
    before a crash, whose event the API had not written yet. Returns how many were missing."""
    recent = recent_actions(wh, datetime.now(UTC) - timedelta(hours=hours))
    if not recent:
        return 0
    runs = {
        (r[0], r[1]): (r[2], r[3])
        for r in wh.rows(
            "SELECT tenant_id, run_id, workflow_name, environment FROM runs_store FINAL "
            "WHERE (tenant_id, run_id) IN {keys:Array(Tuple(String, String))}",
            {"keys": sorted({(t, a.run_id) for t, a in recent})},
        )
    }
    events = [action_requested(t, a, *runs.get((t, a.run_id), ("", ""))) for t, a in recent]
    stored = {
        r[0]
        for r in wh.rows(
            "SELECT event_id FROM lifecycle_events WHERE event_id IN {ids:Array(String)}",
            {"ids": [e.event_id for e in events]},
        )
    }
    missing = [e for e in events if e.event_id not in stored]
    if missing:
        outbox.append(missing)
    return len(missing)
