"""A tenant's effective policy compiled into something that redacts: text, attribute values and
mappings. The receiver (redaction.otlp), `POST /v1/redact`, `wrm redact` and workflow code all
redact through this class, so what a workflow cleans before an LLM call is what WRM stores.

Order: key rules first (operators' rules in order, then the credential-key detector): the first
whose keys match the attribute decides its whole value, or, for a rule with a pattern, looks for
the pattern in that value only. Then every value rule (operators' patterns, then the built-in
detectors in `DETECTORS` order) replaces what it finds in every string that is left, including
the string elements of arrays and the values of key-value lists (whose keys meet the key rules
too). What each action leaves:

  mask      `[REDACTED:<rule>]` in place of the match (of the whole value, for a key rule)
  hash      `[HASH:<rule>:<hex HMAC-SHA256 of the text, keyed per tenant>]`: equal values of
            one tenant give equal digests, so they still join; other tenants' differ
  truncate  the first `keep` characters of the match
  drop      removes the attribute; a span name, event name or status message, which cannot be
            removed, becomes `[REDACTED:<rule>]` whole
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import re2

from redaction.detectors import BY_NAME, Confirm
from redaction.policy import Action, Effective, PolicyError, error_text, glob_literal, glob_regex, re2_options

DROPPED = object()  # what `value` answers for an attribute a drop rule removes
_KEY_CACHE_MAX = 10_000


@dataclass(frozen=True)
class _ValueRule:
    name: str
    action: Action
    keep: int
    pattern: Any  # re2 pattern over str
    group: int = 0
    confirm: Confirm | None = None


@dataclass(frozen=True)
class _KeyRule:
    name: str
    action: Action
    keep: int
    keys: Any  # re2 pattern over the key
    within: _ValueRule | None = None  # the rule's pattern, sought only in these keys' values


@dataclass(frozen=True)
class KeyMatch:
    """What the key rules say of one key: the patterns of those with a pattern, sought in its
    value, and the first without one (`whole`), which takes the whole value."""

    withins: tuple[_ValueRule, ...]
    whole: _KeyRule | None


_NO_MATCH = KeyMatch((), None)


class Rules:
    """An effective policy compiled: the key rules, the value rules, and the trigger that says
    whether a span's bytes may hold anything they match. Shared by every tenant with the same
    effective policy (compiling costs ~1 ms; tenants can be many)."""

    def __init__(self, policy: Effective) -> None:
        try:
            self._compile(policy)
        except re2.error as exc:
            raise PolicyError(f"the policy's rules cannot be compiled together: {error_text(exc)}") from None

    def _compile(self, policy: Effective) -> None:
        self.policy = policy
        options = re2_options()
        self.key_rules: list[_KeyRule] = []
        self.value_rules: list[_ValueRule] = []
        triggers: list[str] = []
        self.always = False  # some rule cannot be pre-checked on raw bytes: read every span
        for rule in policy.rules:
            within = None
            if rule.pattern is not None:
                within = _ValueRule(rule.name, rule.action, rule.keep, re2.compile(rule.pattern, options))
            if rule.keys:
                keys = re2.compile("|".join(glob_regex(g) for g in rule.keys), options)
                self.key_rules.append(_KeyRule(rule.name, rule.action, rule.keep, keys, within))
                literals = [glob_literal(g) for g in rule.keys]
                if all(literals):
                    triggers.extend("(?i)" + re2.escape(lit) for lit in literals)
                else:
                    self.always = True
            elif within is not None:
                self.value_rules.append(within)
                if _anchored(rule.pattern or ""):
                    self.always = True
                else:
                    triggers.append(rule.pattern or "")
        for name, setting in policy.detectors.items():
            detector = BY_NAME[name]
            if setting == "off":
                continue
            if detector.on_keys:
                keys = re2.compile(detector.key_pattern, options)
                self.key_rules.append(_KeyRule(name, setting, policy.keep, keys))
            else:
                pattern = re2.compile(detector.pattern, options)
                self.value_rules.append(
                    _ValueRule(name, setting, policy.keep, pattern, detector.group, detector.confirm)
                )
            triggers.append(detector.trigger)
        self.inert = not self.key_rules and not self.value_rules
        # A span whose bytes match none of these holds nothing any rule redacts (redaction.otlp).
        # `wrm.redacted` is ours: a sender's own is removed, so it is sought too.
        self.trigger: Any = None
        if not self.inert:
            joined = "|".join(f"(?:{t})" for t in [*triggers, r"wrm\.redacted\x12"])
            self.trigger = re2.compile(joined.encode(), options)
        self.values_any = (
            re2.compile("|".join(f"(?:{r.pattern.pattern})" for r in self.value_rules), options)
            if self.value_rules
            else None
        )
        self._key_cache: dict[str, KeyMatch] = {}

    def key_match(self, key: str) -> KeyMatch:
        """The key rules matching `key`, in order, up to the first that takes the whole value:
        a rule with a pattern does not stop the search, so `credential_key` still masks a
        password under an operator's `keys = ["*"]` rule with a pattern (cached: keys repeat
        span after span)."""
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        withins: list[_ValueRule] = []
        whole = None
        for rule in self.key_rules:
            if rule.keys.search(key):
                if rule.within is None:
                    whole = rule
                    break
                withins.append(rule.within)
        found = KeyMatch(tuple(withins), whole) if withins or whole else _NO_MATCH
        if len(self._key_cache) >= _KEY_CACHE_MAX:
            self._key_cache = {}
        self._key_cache[key] = found
        return found


class Redactor:
    """Redacts for one tenant: its compiled rules and the key of its `hash` actions
    (redaction.book.tenant_hash_key)."""

    def __init__(self, policy: Effective | Rules, hash_key: bytes, tenant: str = "") -> None:
        self.rules = policy if isinstance(policy, Rules) else Rules(policy)
        self.policy = self.rules.policy
        self.tenant = tenant
        self._hash_key = hash_key
        self.inert = self.rules.inert
        self.always = self.rules.always
        self.trigger = self.rules.trigger
        self.key_match = self.rules.key_match
        self._value_rules = self.rules.value_rules
        self._values_any = self.rules.values_any

    @classmethod
    def for_tenant(cls, tenant: str = "default", *, config_file: str | None = None) -> Redactor:
        """The tenant's Redactor from WRM's settings (`redaction`, `tenant_redaction`,
        `redaction_secret`: a TOML file and `WRM_*` variables, as `wrm serve` reads them).
        Policies set through the API live in the server's warehouse: use `POST /v1/redact`
        (or `wrm redact`) for those."""
        from redaction.config import book_from_settings

        return book_from_settings(config_file).redactor(tenant)

    # -- text ------------------------------------------------------------------------------

    def text(self, text: str, tally: Counter[str] | None = None) -> str:
        """`text` with every value rule applied; a drop rule that matches blanks it whole."""
        out = self._values(text, tally if tally is not None else Counter())
        return f"[REDACTED:{out[1]}]" if isinstance(out, tuple) else out

    def _values(self, text: str, tally: Counter[str]) -> str | tuple[None, str]:
        """`text` after the value rules, or (None, rule) when a drop rule matched."""
        if self._values_any is None or not text or not self._values_any.search(text):
            return text
        for rule in self._value_rules:
            out = self._apply(rule, text, tally)
            if out is None:
                return None, rule.name
            text = out
        return text

    def _apply(self, rule: _ValueRule, text: str, tally: Counter[str]) -> str | None:
        parts: list[str] = []
        pos = found = 0
        for m in rule.pattern.finditer(text):
            start, end = m.span(rule.group)
            if rule.confirm is not None:
                narrowed = rule.confirm(m.group(0))
                if narrowed is None:
                    continue
                start, end = m.start() + narrowed[0], m.start() + narrowed[1]
            if start >= end or start < pos:
                continue
            found += 1
            if rule.action == "drop":
                tally[rule.name] += 1
                return None
            parts.append(text[pos:start])
            parts.append(self._replace(rule.name, rule.action, rule.keep, text[start:end]))
            pos = end
        if not found:
            return text
        tally[rule.name] += found
        parts.append(text[pos:])
        return "".join(parts)

    def _replace(self, name: str, action: Action, keep: int, text: str) -> str:
        if action == "mask":
            return f"[REDACTED:{name}]"
        if action == "hash":
            return f"[HASH:{name}:{self.digest(text)}]"
        return text[:keep]  # truncate

    def digest(self, text: str) -> str:
        """The hex HMAC-SHA256 of `text` under this tenant's key."""
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()

    # -- attributes ------------------------------------------------------------------------

    def whole(self, rule: _KeyRule, rendered: str, tally: Counter[str]) -> str:
        """What a key rule without a pattern leaves of a whole value (not `drop`). What
        `truncate` keeps still meets the value rules (a drop among them blanks it)."""
        if rule.action == "truncate":
            if len(rendered) > rule.keep:
                tally[rule.name] += 1
            return self.text(rendered[: rule.keep], tally)
        tally[rule.name] += 1
        return self._replace(rule.name, rule.action, rule.keep, rendered)

    def value(self, key: str, value: Any, tally: Counter[str] | None = None) -> Any:
        """A plain value (str, number, bool, None, list, mapping) under attribute `key`, redacted;
        DROPPED when a drop rule removes the attribute."""
        tally = tally if tally is not None else Counter()
        if value is None:
            return None  # no value: nothing to redact (as an OTLP attribute without one)
        match = self.key_match(key)
        whole = match.whole
        if whole is not None:
            if whole.action == "drop":
                tally[whole.name] += 1
                return DROPPED
            if whole.action != "truncate":
                return self.whole(whole, value if isinstance(value, str) else render(value), tally)
            if isinstance(value, str):
                kept = self.within(value, match.withins, tally)
                return kept if kept is DROPPED else self.whole(whole, kept, tally)
        return self.apply(value, match.withins, tally)

    def within(self, text: str, withins: tuple[_ValueRule, ...], tally: Counter[str]) -> Any:
        """`text` after the patterns of the key rules matching its key (DROPPED by a drop)."""
        for rule in withins:
            out = self._apply(rule, text, tally)
            if out is None:
                return DROPPED
            text = out
        return text

    def apply(self, value: Any, withins: tuple[_ValueRule, ...], tally: Counter[str]) -> Any:
        """A value under its key's `withins`, then the value rules; lists item by item (a drop
        in one drops the attribute), mappings as attributes."""
        if isinstance(value, str):
            value = self.within(value, withins, tally)
            if value is DROPPED:
                return DROPPED
            done = self._values(value, tally)
            return DROPPED if isinstance(done, tuple) else done
        if isinstance(value, bytes):
            return _bytes(self.apply(value.decode(), withins, tally)) if _utf8(value) else value
        if isinstance(value, Mapping):
            return self.mapping(value, tally)
        if isinstance(value, list | tuple):
            items = [self.apply(v, withins, tally) for v in value]
            return DROPPED if any(i is DROPPED for i in items) else items
        return value

    def mapping(self, attributes: Mapping[str, Any], tally: Counter[str] | None = None) -> dict[str, Any]:
        """A mapping of attributes, redacted; dropped attributes are left out."""
        tally = tally if tally is not None else Counter()
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            done = self.value(str(key), value, tally)
            if done is not DROPPED:
                out[str(key)] = done
        return out

    def redact(self, data: Any, tally: Counter[str] | None = None) -> Any:
        """Text or a mapping of attributes (or a list of them), redacted as WRM stores it."""
        tally = tally if tally is not None else Counter()
        if isinstance(data, str):
            return self.text(data, tally)
        if isinstance(data, Mapping):
            return self.mapping(data, tally)
        if isinstance(data, list | tuple):
            return [self.redact(item, tally) for item in data]
        return data


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _bytes(done: Any) -> Any:
    return done if done is DROPPED else done.encode()


def render(value: Any) -> str:
    """The text a non-string value is hashed as: JSON, compact (bytes as hex, as OTLP's plain())."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_hex_or_text)


def _hex_or_text(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def _anchored(pattern: str) -> bool:
    """Whether a pattern may depend on where its text starts or ends (anchors, word boundaries),
    which the bytes around a string in protobuf would change: such a rule reads every span."""
    return bool(re2.search(r"(?:^|[^\[\\])\^|\$|\\[AzbB]", pattern)) or "(?m" in pattern
