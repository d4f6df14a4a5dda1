"""Lifecycle webhooks: subscriptions, signed deliveries per Standard Webhooks, their log.

Modules: `schemas` (what the API takes and shows), `store` (subscriptions in the warehouse),
`targets` (which URLs may be called), `signing` (secrets and signatures), `policy` (what an
answer means and when to retry), `sender` (one HTTP attempt), `attempts` (the delivery log),
`dispatcher` (the queues that deliver the outbox), `app_events` (events the API writes).

Errors, classified once:

    WebhookError
    ├── TargetRefused   the URL is not http(s), or resolves to a private address (permanent)
    └── UnknownWebhook  no such subscription in the caller's tenant
"""
