"""Lifecycle webhooks: subscriptions, signed deliveries per Standard Webhooks, their log.

Modules: `schemas` (what the API takes and shows), `store` (subscriptions in the warehouse),
`targets` (which URLs may be called), `signing` (secrets and signatures), `policy` (what an
answer means and when to retry), `sender` (one HTTP attempt), `attempts` (the delivery log),
`reading` (a subscription's events from the outbox), `queue` (one subscription's deliveries),
`dispatcher` (the queues, started and stopped as subscriptions change), `stats` (/metrics),
`app_events` (events the API writes).

Errors, classified once:

    WebhookError
    ├── TargetRefused   the URL may not be called: not http(s), credentials, a private address
    │   └── Unresolved  the name does not resolve (now): retried at delivery, accepted at creation
    ├── UnknownWebhook  no such subscription in the caller's tenant
    └── NotDeliverable  a manual retry of a disabled subscription
"""
