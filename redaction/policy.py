"""Redaction policies as operators write them: in settings (`redaction`, `tenant_redaction`) and
through `PUT /v1/tenants/{tenant}/redaction`.

A policy turns built-in detectors on or off (or changes their action) and adds rules of its own.
A tenant's effective policy is the built-in defaults, then the global policy, then the tenant's:
a detector setting later in that order wins; rules add up, and a tenant rule replaces a global
rule of the same name. Patterns are RE2 syntax (as ClickHouse's `match`), checked when a policy
is read, so a bad pattern is refused with its error instead of failing at ingest.
"""

from __future__ import annotations

from typing import Annotated, Literal

import re2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from redaction.detectors import BY_NAME

Action = Literal["mask", "hash", "drop", "truncate"]
DetectorSetting = Literal["mask", "hash", "drop", "truncate", "off"]
RULE_NAME = r"^[a-z][a-z0-9_.-]{0,62}$"
_KEY_GLOB = r"^[A-Za-z0-9_.\-/*?\[\]!@:]{1,255}$"


class PolicyError(ValueError):
    """A policy cannot be applied as given: its rules together are too large for RE2, or it
    hashes where no secret keys the digests the server stores."""


def re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad operator pattern is reported once, by us, not on stderr
    return options


def glob_regex(glob: str) -> str:
    """An RE2 pattern for a key glob (* ? [..] [!..]), whole key, case-insensitive."""
    out, i = [], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            body = glob[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re2.escape(ch))
        i += 1
    return "(?is)^" + "".join(out) + "$"  # s: a key with a newline in it is still one key


def glob_literal(glob: str) -> str:
    """The longest run of plain characters in a glob: text any key it matches contains."""
    runs = re2.split(r"\*|\?|\[[^\]]*\]", glob)
    return max(runs, key=len) if runs else ""


def _key_glob(glob: str) -> str:
    if not re2.match(_KEY_GLOB, glob):
        raise ValueError(f"{glob[:80]!r} is not a key glob (letters, digits, _ . - / and * ? [ ] !)")
    try:
        re2.compile(glob_regex(glob), re2_options())
    except re2.error as exc:
        raise ValueError(f"{glob[:80]!r} is not a key glob: {error_text(exc)}") from None
    return glob


KeyGlob = Annotated[str, AfterValidator(_key_glob)]


class Rule(BaseModel):
    """An operator's rule: values under keys matching `keys` (globs, case-insensitive), and/or
    text matching `pattern` (RE2) anywhere a detector looks. With both, the pattern is sought only
    in the values of those keys."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=RULE_NAME, description="shown in [REDACTED:<name>] and in what a span records")
    keys: list[KeyGlob] = Field(
        default_factory=list, max_length=100, description="attribute key globs: * ? [..]"
    )
    pattern: str | None = Field(None, max_length=4096, description="RE2 regular expression")
    action: Action = "mask"
    keep: int = Field(8, ge=0, le=1_000_000, description="characters `truncate` keeps")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty")
        try:
            compiled = re2.compile(value, re2_options())
        except re2.error as exc:
            raise ValueError(f"is not an RE2 pattern: {error_text(exc)}") from None
        if compiled.search(""):
            raise ValueError("matches the empty string, so it would match everywhere")
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> Rule:
        if not self.keys and self.pattern is None:
            raise ValueError(f"rule {self.name!r} has neither `keys` nor `pattern`")
        if self.name in BY_NAME:
            raise ValueError(f"rule name {self.name!r} is a built-in detector's; set it under `detectors`")
        return self


class Policy(BaseModel):
    """A global or per-tenant policy. `detectors` maps a built-in detector's name to its action
    or `off`; `keep` is how many characters a detector set to `truncate` keeps."""

    model_config = ConfigDict(extra="forbid")
    detectors: dict[str, DetectorSetting] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list, max_length=200)
    keep: int | None = Field(None, ge=0, le=1_000_000)

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: dict[str, DetectorSetting]) -> dict[str, DetectorSetting]:
        for name in value:
            if name not in BY_NAME:
                raise ValueError(f"{name[:80]!r} is not a built-in detector (known: {', '.join(BY_NAME)})")
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> Policy:
        names = [r.name for r in self.rules]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"rule name {duplicated[0]!r} is used twice")
        return self


class Effective(BaseModel):
    """What applies to one tenant: every detector's setting, the rules in order, and `keep`."""

    model_config = ConfigDict(frozen=True)
    detectors: dict[str, DetectorSetting]
    rules: list[Rule]
    keep: int


def defaults() -> dict[str, DetectorSetting]:
    return {name: ("mask" if d.default_on else "off") for name, d in BY_NAME.items()}


def effective(*policies: Policy | None) -> Effective:
    """Layer policies, the first lowest: the built-in defaults come before all of them."""
    detectors = defaults()
    rules: dict[str, Rule] = {}
    keep = 4
    for policy in policies:
        if policy is None:
            continue
        detectors.update(policy.detectors)
        for rule in policy.rules:
            rules.pop(rule.name, None)  # a later rule of the same name replaces it, and goes last
            rules[rule.name] = rule
        if policy.keep is not None:
            keep = policy.keep
    return Effective(detectors=detectors, rules=list(rules.values()), keep=keep)


def error_text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
