"""Redaction on the write path: each resource's spans with its tenant's rules (redaction.otlp),
after screening and before the request's bytes are framed, so nothing a rule matches reaches a
table, a log line or a response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from receiver.screen import Screened, resource_tenant
from redaction.book import PolicyBook
from redaction.otlp import redact_request
from redaction.redactor import Redactor
from warehouse.tenants import TENANT_RE


class IngestRedaction:
    def __init__(self, book: PolicyBook, default_tenant: str) -> None:
        self.book = book
        self._default_tenant = default_tenant

    def tenant_of(self, rs: Any, key_tenant: str) -> str:
        """The tenant whose rules apply: the key's, else the resource's, else the default (also
        for a malformed tenant id, whose spans are refused: its text only needs cleaning)."""
        if key_tenant:
            return key_tenant
        named = resource_tenant(rs.resource)
        return named if named and TENANT_RE.match(named) else self._default_tenant

    def redactor_for(self, key_tenant: str) -> Callable[[Any], Redactor]:
        return lambda rs: self.book.redactor(self.tenant_of(rs, key_tenant))

    def cleaner(self, key_tenant: str) -> Callable[[Any], Callable[[str], str]]:
        """For screen_request: redacts the text a refusal quotes, with the resource's tenant's rules."""
        # resolved only when a refusal quotes something: screening calls it once per resource
        return lambda rs: lambda text: self.book.redactor(self.tenant_of(rs, key_tenant)).text(text)

    def apply(self, request: Any, screened: Screened, key_tenant: str) -> Screened:
        """`screened` with its request redacted (encoded again only when something changed)."""
        redactor_for = self.redactor_for(key_tenant)
        if not screened.spans or not redact_request(request, screened.payload, redactor_for, not key_tenant):
            return screened
        return replace(screened, payload=request.SerializeToString())
