"""Field-level redaction: built-in detectors and operators' rules, per tenant, applied to spans
before anything is stored, and the same rules as a library for use before an LLM call.

    from redaction import Redactor
    redactor = Redactor.for_tenant("acme")            # the policies in WRM's settings
    clean = redactor.redact({"prompt": text, "user.email": email})

Public surface: `Redactor`, `Policy`, `Rule`, `PolicyBook`, `DETECTORS`, `PolicyError`, and
`effective` / `Effective` (the layered policy a tenant gets).
"""

from redaction.book import PolicyBook
from redaction.detectors import DETECTORS, Detector
from redaction.policy import Effective, Policy, PolicyError, Rule, effective
from redaction.redactor import Redactor

__all__ = [
    "DETECTORS", "Detector", "Effective", "Policy", "PolicyBook", "PolicyError", "Redactor", "Rule",
    "effective",
]  # fmt: skip
