"""Parse warehouse DSNs: `chdb://PATH` (embedded) and `http(s)://[user:pass@]host[:port]`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from warehouse.errors import BadDsn


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN. `path` is set for the embedded engine, `url` for a ClickHouse server."""

    kind: str  # "chdb" or "http"
    path: Path | None = None
    url: str | None = None
    host: str = ""
    port: int = 0
    secure: bool = False
    username: str = "default"
    password: str = ""

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def describe(self) -> str:
        """The DSN without credentials, for logs."""
        if self.embedded:
            return f"chdb://{self.path}"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host}:{self.port}"


def parse_dsn(text: str) -> Dsn:
    """Parse a DSN.

    `chdb://` is followed by a filesystem path, relative (`chdb://./data/wrm`) or absolute
    (`chdb:///var/lib/wrm`). clickhouse-connect's own parser reads `chdb://./data/wrm` as
    location "." and database "data", so the path is parsed here and handed over whole.
    """
    text = text.strip()
    if text.startswith("chdb://"):
        raw = text[len("chdb://") :].split("?", 1)[0]
        if not raw:
            raise BadDsn(f"{text!r}: chdb:// needs a directory, e.g. chdb://./data/wrm")
        if raw in (":memory:", "memory"):
            raise BadDsn(f"{text!r}: an in-memory warehouse would lose every span at exit; name a directory")
        return Dsn(kind="chdb", path=Path(raw).expanduser().resolve())
    parts = urlsplit(text)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise BadDsn(f"{text!r}: no host")
        secure = parts.scheme == "https"
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError as exc:
            raise BadDsn(f"{text!r}: bad port") from exc
        return Dsn(
            kind="http",
            url=text,
            host=parts.hostname,
            port=port,
            secure=secure,
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
        )
    raise BadDsn(f"{text!r}: expected chdb://PATH or http(s)://HOST:PORT")
