"""Why a request was not stored, classified once; each transport maps it to its own codes.

    Refused(why, message)
      why.retryable False — the same request would fail again, do not retry:
        UNAUTHENTICATED  no key while auth is required; an unknown, malformed or revoked key
        FORBIDDEN        a key whose role may not send spans (viewer, operator)
        MALFORMED        the body is not an OTLP request (or not one in the stated encoding)
        TOO_LARGE        the body, or what it inflates to, is over the size limit
        UNSUPPORTED      a content type or encoding the transport does not read
        STORE_PERMANENT  the warehouse refused the rows for good (a broken table or view)
      why.retryable True — nothing was stored; the same request may be stored later:
        BACKPRESSURE     too many spans are waiting to be stored
        CLOSING          the server is stopping
        POLICY           the tenant's stored redaction policy cannot be applied (redaction.book)
        STORE_TRANSIENT  the warehouse failed in a way that passes (warehouse.errors)

The value of each member is the `outcome` label of `wrm_otlp_requests_total`.
"""

from __future__ import annotations

from enum import Enum


class Why(Enum):
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    STORE_PERMANENT = "store_permanent"
    BACKPRESSURE = "backpressure"
    CLOSING = "closing"
    POLICY = "policy"
    STORE_TRANSIENT = "store_transient"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset({Why.BACKPRESSURE, Why.CLOSING, Why.POLICY, Why.STORE_TRANSIENT})


class Refused(Exception):
    """The request was not acknowledged: the client must not count it as stored. (Spans the
    checks refuse one by one are not this: they go out in partial_success.)"""

    def __init__(self, why: Why, message: str) -> None:
        super().__init__(message)
        self.why = why
        self.message = message
