"""What the redaction tests share (not collected: the name does not start with `test_`).

- The detectors' property tests (tests/test_redaction_detectors*.py): the default redactor, the
  Hypothesis settings, alphabets and words, prose around a secret, and caught / untouched checks.
- Rules on values and on OTLP requests (tests/test_redaction_rules*.py): a tenant's redactor, rule
  policies, hash digests, and spans, attributes and requests built by hand.
- End to end (tests/test_redaction_ingest.py): the server's policies, planted secrets and the
  passes that send them (SDK, raw OTLP, refusals, two tenants), and a log capture."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.trace import Link, Status, StatusCode

from redaction import DETECTORS, Policy, Redactor, Rule, effective
from redaction.book import tenant_hash_key
from redaction.detectors import luhn_ok
from redaction.otlp import REDACTED_ATTRIBUTE, attribute_mapping, redact_request
from tests.otlp import flush, make_span, request_of, sdk_provider, send_raw
from wrm.server import WrmServer

# -- the detectors' property tests ------------------------------------------------------------

DEFAULT = Redactor(effective(), b"k" * 32)
PROPERTY = settings(max_examples=200, deadline=None, database=None)
SMALL = settings(max_examples=80, deadline=None, database=None)  # the narrower properties

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
WORDS = (
    "the", "a", "customer", "asked", "about", "their", "refund", "order", "shipped", "today",
    "please", "check", "status", "of", "ticket", "agent", "replied", "with", "details", "and",
    "knowledge", "token", "tokens", "secret", "password", "key", "keys", "card",
    "number", "account", "Monday", "invoice", "was", "paid", "late", "we", "will", "call", "back",
    "API", "model", "prompt", "completion", "retrieval", "tool", "AWS", "Slack", "GitHub", "Google",
    "sk", "email", "phone", "bank", "IP", "address", "social", "security", "exp", "cvv", "Qty",
)  # fmt: skip
PUNCT = ("", "", "", ",", ".", "!", "?", ";")


def redact_text(text: str, redactor: Redactor = DEFAULT) -> tuple[str, Counter[str]]:
    tally: Counter[str] = Counter()
    return redactor.text(text, tally), tally


def chars(alphabet: str, min_size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size if max_size else min_size)


@st.composite
def prose(draw: st.DrawFn, min_words: int = 0, max_words: int = 12, words: tuple[str, ...] = WORDS) -> str:
    """Ordinary sentences: words, punctuation after some, and letters-only words of its own.
    (Around a secret without `bearer` and `basic`, which would make the secret a bearer token.)"""
    chosen = draw(
        st.lists(
            st.one_of(st.sampled_from(words), chars(string.ascii_letters, 1, 12)),
            min_size=min_words,
            max_size=max_words,
        )
    )
    return " ".join(w + draw(st.sampled_from(PUNCT)) for w in chosen)


def embedded(secret: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """(text, secret): the secret with prose on either side (or alone)."""
    return st.tuples(prose(), secret, prose()).map(lambda t: (" ".join(part for part in t if part), t[1]))


def assert_caught(text: str, *needles: str, redactor: Redactor = DEFAULT) -> Counter[str]:
    out, tally = redact_text(text, redactor)
    for needle in needles:
        assert needle not in out, (text, out)
    assert tally, (text, out)
    return tally


def assert_untouched(text: str) -> None:
    out, tally = redact_text(text)
    assert out == text and not tally, (text, out, tally)


# -- rules on values and on OTLP requests ----------------------------------------------------

SECRET = b"0123456789abcdef0123456789abcdef"
AWS = "AKIAIOSFODNN7EXAMPLE"
CARD = "4111 1111 1111 1111"


def redactor(*policies: Policy | None, tenant: str = "acme") -> Redactor:
    return Redactor(effective(*policies), tenant_hash_key(SECRET, tenant), tenant)


def rules(*given: Rule, **detectors: Any) -> Policy:
    return Policy(rules=list(given), detectors=detectors)


def digest(tenant: str, text: str) -> str:
    return hmac.new(tenant_hash_key(SECRET, tenant), text.encode(), hashlib.sha256).hexdigest()


def span(*attributes: KeyValue, name: str = "step", **fields: Any) -> Span:
    s = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=name, start_time_unix_nano=1, **fields)
    s.attributes.extend(attributes)
    return s


def kv(key: str, text: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=text))


def kvlist(*pairs: tuple[str, AnyValue]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))


def request(
    *spans: Span, resource: tuple[KeyValue, ...] = (), scope: tuple[KeyValue, ...] = ()
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(resource)
    ss = rs.scope_spans.add()
    ss.scope.attributes.extend(scope)
    ss.spans.extend(spans)
    return req


def redact_spans(req: ExportTraceServiceRequest, r: Redactor) -> tuple[bool, list[Span]]:
    changed = redact_request(req, req.SerializeToString(), lambda rs: r)
    return changed, list(req.resource_spans[0].scope_spans[0].spans)


def record(s: Span) -> dict[str, int] | None:
    found = dict(attribute_mapping(s.attributes)).get(REDACTED_ATTRIBUTE)
    return None if found is None else dict(json.loads(found))


# -- end to end: the server's policies, planted secrets and the passes that send them --------

# the settings the end-to-end server starts with (and the library reads them back)
E2E_SECRET = "e2e-redaction-secret-0123456789abcdef"
E2E_GLOBAL = {"rules": [{"name": "cust", "keys": ["customer.id"], "action": "hash"}]}
E2E_TENANTS = {
    "pii": {"detectors": {d.name: "mask" for d in DETECTORS}},  # every detector on
    "tenant-a": {"detectors": {"email": "mask"}},  # tenant-b: the defaults (email off)
}
WORKFLOW = "redaction-e2e"
_rng = random.SystemRandom()


def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def random_card() -> str:
    body = _rng.choice("45") + rand(14, string.digits)
    return next(body + d for d in string.digits if luhn_ok(body + d))


def random_iban() -> str:
    bban = rand(18, string.digits)
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, then "00"
    return f"DE{check:02d}{bban}"


@dataclass
class Plant:
    """Secrets of each kind as text carries them (`values`), a credential for attributes whose
    key names one (`credential`), and the text that must never be stored (`needles`)."""

    credential: str = field(default_factory=lambda: f"pw-{rand(20)}")
    values: dict[str, str] = field(default_factory=dict)
    needles: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.needles["credential_key"] = [self.credential]

    def add(self, kind: str, value: str, *needles: str) -> str:
        self.values[kind] = value
        self.needles[kind] = list(needles) or [value]
        return value

    def prose(self) -> str:
        """Every value in one text, as prose would carry them."""
        return " and ".join(f"see {value} here" for value in self.values.values())

    def all_needles(self) -> list[str]:
        return [n for ns in self.needles.values() for n in ns]


def default_plant() -> Plant:
    p = Plant()
    p.add("aws_key", "AKIA" + rand(16, string.ascii_uppercase + string.digits))
    sk = rand(40)
    p.add("sk_key", f"sk-proj-{sk}", sk)
    p.add("github_token", "ghp_" + rand(36))
    slack = rand(24)
    p.add("slack_token", f"xoxb-{rand(12, string.digits)}-{rand(12, string.digits)}-{slack}", slack)
    p.add("google_api_key", "AIza" + rand(35))
    payload, signature = rand(40), rand(43)
    p.add("jwt", f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{payload}.{signature}", payload, signature)
    token = f"{rand(24)}.{rand(8)}"
    p.add("bearer_token", f"Bearer {token}", token)
    lines = [rand(48) for _ in range(3)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"
    p.add("private_key", pem, *lines)
    word = rand(16)
    p.add("credential_in_text", f"password={word}", word)
    db_password = rand(18)
    p.add("url_password", f"postgres://app:{db_password}@db.internal:5432/orders", db_password)
    number = random_card()
    grouped = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    p.add("card_number", grouped, grouped, number)
    return p


def pii_plant() -> Plant:
    p = default_plant()
    local = rand(12, string.ascii_lowercase + string.digits)
    p.add("email", f"{local}@example.org", local)
    p.add("phone", f"+1 415 555 {rand(4, string.digits)}")
    p.add("iban", random_iban())
    p.add("ip_address", f"203.0.113.{_rng.randint(1, 254)}")
    p.add("us_ssn", f"{_rng.randint(100, 599)}-{_rng.randint(10, 99)}-{_rng.randint(1000, 9999)}")
    return p


@dataclass
class Sent:
    default: Plant
    pii: Plant
    cause: Plant  # only in an exception's cause: its stacktrace is the only place they are
    raw: Plant  # sent as raw OTLP
    trace_id: str  # the default pass's run
    llm_attributes: dict[str, Any]
    llm_name: str
    partial_success: str
    log: list[str]


class LogCapture(logging.Handler):
    """Every log line, and its traceback, as formatted text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


def sdk_pass(
    server: WrmServer, plant: Plant, cause: Plant | None, tenant: str
) -> tuple[str, dict[str, Any], str]:
    """A workflow through the SDK with `plant` in every place the SDK can put it; (trace id,
    the LLM span's attributes, its name)."""
    v = plant.values
    text = plant.prose()
    resource = {"deploy.note": text, "db.password": plant.credential}
    if tenant:
        resource["wrm.tenant.id"] = tenant
    provider = sdk_provider(server.otlp_address, service="redaction-agent", **resource)
    tracer = provider.get_tracer(
        "tests.redaction", "1.0", attributes={"scope.note": text, "api_key": plant.credential}
    )
    llm_name = f"llm {v['aws_key']}"
    llm_attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.prompt": text,
        "http.request.header.authorization": v["bearer_token"],
        "db.password": plant.credential,
        "customer.id": "c-default",
        "tags": list(v.values()),
        **{f"plant.{k}": value for k, value in v.items()},
    }
    with tracer.start_as_current_span("workflow") as root:
        root.set_attribute("wrm.workflow.name", WORKFLOW)
        with tracer.start_as_current_span(llm_name, attributes=llm_attributes) as llm:
            for kind, value in v.items():
                llm.add_event(f"saw {value}", {"detail": text, "password": plant.credential, "kind": kind})
            first = llm.get_span_context()
        for value in v.values():
            with tracer.start_as_current_span(
                f"tool {value}", links=[Link(first, {"why": text, "token": value})]
            ):
                pass
        with tracer.start_as_current_span("charge") as charge:
            try:
                try:
                    raise ValueError(cause.prose() if cause else "no cause")
                except ValueError as inner:
                    raise RuntimeError(f"charge failed: {text}") from inner
            except RuntimeError as exc:
                charge.record_exception(exc)
                charge.set_status(Status(StatusCode.ERROR, text))
        root.set_status(Status(StatusCode.ERROR, text))
        trace_id = f"{root.get_span_context().trace_id:032x}"
    flush(provider)
    provider.shutdown()
    return trace_id, llm_attributes, llm_name


def any_string(text: str) -> AnyValue:
    return AnyValue(string_value=text)


def any_kvlist(**values: AnyValue) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in values.items()]))


def raw_pass(server: WrmServer, plant: Plant) -> None:
    """What the SDK cannot send: key-value lists, scope names, event names on raw spans, link
    trace states, and a sender's own `wrm.redacted`."""
    v = plant.values
    text = plant.prose()
    span = make_span(f"raw {v['sk_key']}")
    span.attributes.append(
        KeyValue(
            key="config",
            value=any_kvlist(
                db=any_kvlist(password=any_string(plant.credential), dsn=any_string(text)),
                note=any_string(text),
                list=AnyValue(array_value=ArrayValue(values=[any_string(x) for x in v.values()])),
                nested=any_kvlist(deeper=any_kvlist(secret=AnyValue(int_value=1234), text=any_string(text))),
            ),
        )
    )
    span.attributes.append(KeyValue(key=REDACTED_ATTRIBUTE, value=any_string('{"forged":7}')))
    event = span.events.add(name=f"event {text}", time_unix_nano=span.start_time_unix_nano)
    event.attributes.append(
        KeyValue(key="payload", value=any_kvlist(token=any_string(v["github_token"]), t=any_string(text)))
    )
    link = span.links.add(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)))
    link.attributes.append(KeyValue(key="ctx", value=any_kvlist(why=any_string(text))))
    req = request_of([span], service="raw-client")
    scope = req.resource_spans[0].scope_spans[0].scope
    scope.name = f"lib {v['slack_token']}"
    scope.attributes.append(KeyValue(key="scope.cfg", value=any_kvlist(note=any_string(text))))
    req.resource_spans[0].resource.attributes.append(
        KeyValue(key="res.cfg", value=any_kvlist(n=any_string(text)))
    )
    response = send_raw(server.otlp_address, req)
    assert response.partial_success.rejected_spans == 0


def send_refusals(server: WrmServer, plant: Plant) -> str:
    """A request whose refusals quote a span name and a tenant id that hold secrets."""
    text = plant.prose()
    req = request_of([make_span("fine"), make_span(f"bad {text}", trace=bytes(16))], service="refusals")
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="wrm.tenant.id", value=any_string(f"no tenant {text}")))
    rs.scope_spans.add().spans.append(make_span("in a refused resource"))
    response = send_raw(server.otlp_address, req)
    assert response.partial_success.rejected_spans == 2
    return str(response.partial_success.error_message)


def tenants_pass(server: WrmServer, email: str) -> None:
    """The same spans for tenant A (email masked) and tenant B (email kept); customer ids hashed."""
    for tenant in ("tenant-a", "tenant-b"):
        provider = sdk_provider(server.otlp_address, service="tenant-agent", **{"wrm.tenant.id": tenant})
        tracer = provider.get_tracer("tests.tenants")
        with tracer.start_as_current_span("contact"):
            for i, customer in enumerate(("c-1", "c-1", "c-2")):
                attributes = {"user.email": email, "note": f"write to {email}", "customer.id": customer}
                with tracer.start_as_current_span(f"lookup-{i}", attributes=attributes):
                    pass
        flush(provider)
        provider.shutdown()
