"""What the tests of a module start from, sent before the first of them runs: every test's first
spans in one request, so one flush and one assembly cycle for the module, not one per test.

    FIRST = FirstSpans()

    @FIRST(span(...), span(...), service="svc")           # a resource with these attributes
    @FIRST.of_tenants(("acme", [span(...)]), ...)         # a resource per (tenant, spans)
    def test_...(server): ...

and in the module's server fixture, after the server starts: `FIRST.send(server)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import settle
from tests.otlp import send_raw
from tests.workflows import request
from wrm.server import WrmServer

Test = TypeVar("Test", bound=Callable[..., None])


class FirstSpans:
    def __init__(self) -> None:
        self._resources: list[tuple[list[Span], dict[str, str]]] = []

    def __call__(self, *spans: Span, **resource: str) -> Callable[[Test], Test]:
        """The spans a test starts from, in a resource with these attributes."""
        return self._register([(list(spans), resource)])

    def of_tenants(self, *parts: tuple[str, list[Span]]) -> Callable[[Test], Test]:
        """The spans a test starts from, (tenant, spans) a resource each."""
        return self._register([(spans, {"wrm__tenant__id": tenant}) for tenant, spans in parts])

    def _register(self, resources: list[tuple[list[Span], dict[str, str]]]) -> Callable[[Test], Test]:
        def register(test: Test) -> Test:
            self._resources.extend(resources)
            return test

        return register

    def send(self, server: WrmServer) -> None:
        """Every test's first spans in one request, stored whole, then assembled."""
        one = ExportTraceServiceRequest()
        for spans, resource in self._resources:
            one.resource_spans.extend(request(spans, **resource).resource_spans)
        assert send_raw(server.otlp_address, one).partial_success.rejected_spans == 0
        settle(server)
