"""/v1/webhooks: admins subscribe their tenant's lifecycle events to an http(s) endpoint, test
it, rotate its secret, read its delivery log and retry a message. Every route is the caller's
tenant only: another tenant's subscription is 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from analytics.api.caller import Admin
from analytics.runs.errors import StateConflict, UnknownItem
from analytics.webhooks import attempts
from analytics.webhooks.app_events import ping_event
from analytics.webhooks.dispatcher import Dispatcher, NotDeliverable
from analytics.webhooks.schemas import (
    TEST_EVENT,
    DeliveryPage,
    MessageQueued,
    RotatedSecret,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookUpdate,
)
from analytics.webhooks.store import SubscriptionStore, TooManyWebhooks
from analytics.webhooks.targets import TargetRefused, UnknownWebhook
from warehouse import Warehouse
from warehouse.outbox import Outbox


def _refused(exc: TargetRefused) -> RequestValidationError:
    """A URL that may not be called: 422, like any invalid field, naming the field."""
    return RequestValidationError([{"loc": ("body", "url"), "msg": str(exc), "type": "value_error"}])


def build_router(
    wh: Warehouse, store: SubscriptionStore, outbox: Outbox, dispatcher: Dispatcher
) -> APIRouter:
    """`wh`: the API's handle (the delivery log is read on it); `store`, `outbox`, `dispatcher`:
    the server's (a change to a subscription reloads the dispatcher's queues)."""
    router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

    def _get(tenant: str, webhook_id: str) -> None:
        try:
            store.get(tenant, webhook_id)
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None

    @router.post("", response_model=WebhookCreated, status_code=201)
    def create(who: Admin, body: WebhookCreate) -> WebhookCreated:
        """Subscribe `url` to `events`. The answer carries the signing `secret`, shown only here.
        422 for a URL that is not http(s) or reaches a private address (unless allowed)."""
        try:
            sub = store.create(who.tenant, body, who.actor.label)
        except TargetRefused as exc:
            raise _refused(exc) from None
        except TooManyWebhooks as exc:
            raise StateConflict(str(exc)) from None
        return WebhookCreated(**sub.public().model_dump(), secret=sub.secret)

    @router.get("", response_model=WebhookList)
    def list_webhooks(who: Admin) -> WebhookList:
        return WebhookList(webhooks=[s.public() for s in store.list(who.tenant)])

    @router.get("/{webhook_id}", response_model=Webhook)
    def get_webhook(who: Admin, webhook_id: str) -> Webhook:
        try:
            return store.get(who.tenant, webhook_id).public()
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None

    @router.patch("/{webhook_id}", response_model=Webhook)
    def update(who: Admin, webhook_id: str, body: WebhookUpdate) -> Webhook:
        """Change what is given; `enabled: true` re-enables a subscription a 410 disabled (the
        events emitted meanwhile are then delivered)."""
        try:
            return store.update(who.tenant, webhook_id, body).public()
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None
        except TargetRefused as exc:
            raise _refused(exc) from None

    @router.delete("/{webhook_id}", status_code=204)
    def delete(who: Admin, webhook_id: str) -> Response:
        try:
            store.delete(who.tenant, webhook_id)
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None
        return Response(status_code=204)

    @router.post("/{webhook_id}/rotate-secret", response_model=RotatedSecret)
    def rotate(who: Admin, webhook_id: str) -> RotatedSecret:
        """A new secret; the old one keeps signing (a second signature) for 24 hours."""
        try:
            sub = store.rotate(who.tenant, webhook_id)
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None
        return RotatedSecret(
            webhook_id=webhook_id, secret=sub.secret, previous_secret_valid_until=sub.previous_until
        )

    @router.post("/{webhook_id}/test", response_model=MessageQueued, status_code=202)
    def test(who: Admin, webhook_id: str) -> MessageQueued:
        """Send a `webhook.test` event to this subscription only; its attempts show in the log."""
        _get(who.tenant, webhook_id)
        event = ping_event(who.tenant, webhook_id)
        outbox.append([event])
        return MessageQueued(webhook_id=webhook_id, message_id=event.event_id, event_type=TEST_EVENT)

    @router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
    def deliveries(
        who: Admin,
        webhook_id: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        message_id: Annotated[str, Query(max_length=100, description="one message's attempts")] = "",
    ) -> DeliveryPage:
        """Every attempt, newest first: outcome, HTTP status, latency, an excerpt of the answer."""
        _get(who.tenant, webhook_id)
        return DeliveryPage(
            webhook_id=webhook_id,
            deliveries=attempts.deliveries(wh, who.tenant, webhook_id, limit, message_id),
        )

    @router.post("/{webhook_id}/deliveries/{message_id}/retry", response_model=MessageQueued, status_code=202)
    def retry(who: Admin, webhook_id: str, message_id: str) -> MessageQueued:
        """Send a message again now (delivered, failed or waiting for its next retry alike)."""
        try:
            request = dispatcher.retry_now(who.tenant, webhook_id, message_id)
        except UnknownWebhook as exc:
            raise UnknownItem(str(exc)) from None
        except NotDeliverable as exc:
            raise StateConflict(str(exc)) from None
        return MessageQueued(webhook_id=webhook_id, message_id=message_id, event_type=request.event_type)

    return router
