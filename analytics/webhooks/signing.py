"""Secrets and signatures per Standard Webhooks, through its reference library: a secret is
`whsec_` and base64 of 32 random bytes; a signature is `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`. While a rotated-out secret is still valid, each message carries both
signatures, space-separated, as the spec allows, so a receiver can switch keys at its pace."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(keys: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The `webhook-signature` value: one `v1,…` per secret in `keys`."""
    return " ".join(Webhook(key).sign(msg_id, timestamp, body) for key in keys)
