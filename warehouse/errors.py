"""Errors raised by the warehouse layer, in two honest classes.

    WarehouseError                 anything the warehouse layer raises
     ├── WarehouseUnavailable      transient: the engine cannot take this work now (connection,
     │    │                        timeout, memory, too many parts, shutting down); the same
     │    │                        statement may succeed later, so callers retry
     │    └── WarehouseLocked      another process holds the embedded data directory
     ├── WarehouseRejected         permanent: the statement or its data will fail the same way
     │                             every time (syntax, unknown table or column, types, data
     │                             the engine cannot parse); retrying only repeats it
     ├── BadDsn                    the DSN cannot be understood
     └── MigrationError            a migration file is malformed or failed to apply

`classify` decides between the first two once, from the driver's exception type and the
ClickHouse error code it carries (clickhouse-connect's `Error.code`), never from message text.
Callers map the classes to their own protocol at the edge (OTLP: UNAVAILABLE only for
transient errors; HTTP: 503 transient, 500 permanent).
"""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import (
    ClickHouseError,
    DataError,
    NotSupportedError,
    ProgrammingError,
)

# ClickHouse error codes (src/Common/ErrorCodes.cpp) that say "not now" rather than "never".
TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE (a connection cut mid-answer)
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        74,  # CANNOT_READ_FROM_FILE_DESCRIPTOR
        75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR
        159,  # TIMEOUT_EXCEEDED
        160,  # TOO_SLOW
        173,  # CANNOT_ALLOCATE_MEMORY
        201,  # QUOTA_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY (a replica that lost its keeper session)
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
    }
)


class WarehouseError(Exception):
    """Base of every warehouse-layer error. `code` is the ClickHouse error code, when known."""

    def __init__(self, message: str, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name  # the symbolic ClickHouse name, e.g. UNKNOWN_TABLE, when known

    def summary(self) -> str:
        """Class, code and name without the engine's message, which can quote SQL and data: for
        places that show errors to anyone who can reach them (/healthz)."""
        label = type(self).__name__
        if self.code is not None:
            label += f": ClickHouse code {self.code}"
            if self.name:
                label += f" ({self.name})"
        return label


class WarehouseUnavailable(WarehouseError):
    """Transient: the warehouse could not run the statement now; the caller may retry later."""


class WarehouseLocked(WarehouseUnavailable):
    """The embedded data directory is open in another process."""


class WarehouseRejected(WarehouseError):
    """Permanent: the statement or its data is refused and would be refused again."""


class BadDsn(WarehouseError):
    """The DSN names no supported warehouse."""


class MigrationError(WarehouseError):
    """A migration could not be read or applied."""


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same statement later may succeed.

    An engine error is transient only for the codes in TRANSIENT_CODES. Without a code, the
    driver's own refusals (bad arguments, unconvertible data, a closed client) are permanent and
    transport failures (the connection broke, timed out or was refused) transient."""
    if isinstance(exc, WarehouseError):
        return isinstance(exc, WarehouseUnavailable)
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    code = getattr(exc, "code", None)
    if code is None:
        return isinstance(exc, ClickHouseError) and not isinstance(
            exc, (ProgrammingError, DataError, NotSupportedError)
        )
    return code in TRANSIENT_CODES


def classify(exc: BaseException, context: str = "") -> WarehouseError:
    """The warehouse-layer error for a driver exception: transient or permanent, with its code."""
    if isinstance(exc, WarehouseError):
        return exc
    code = getattr(exc, "code", None)
    text = f"{context}: {exc}" if context else str(exc)
    cls = WarehouseUnavailable if is_transient(exc) else WarehouseRejected
    name = getattr(exc, "name", None)
    return cls(text, code if isinstance(code, int) else None, name if isinstance(name, str) else None)
