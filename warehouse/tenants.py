"""What a tenant id may be: it scopes every table's rows, so ingest, settings and the API check
it the same way."""

from __future__ import annotations

import re

TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
