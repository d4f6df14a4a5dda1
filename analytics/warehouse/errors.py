"""Errors raised by the warehouse layer.

    WarehouseError                 anything the warehouse layer raises
     ├── WarehouseUnavailable      the engine cannot take work now; retrying later may succeed
     │    └── WarehouseLocked      another process holds the embedded data directory
     ├── BadDsn                    the DSN cannot be understood
     └── MigrationError            a migration file is malformed or failed to apply

Callers map these to their own protocol at the edge (OTLP: UNAVAILABLE is retryable).
"""


class WarehouseError(Exception):
    """Base of every warehouse-layer error."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse could not run the statement; the caller may retry later."""


class WarehouseLocked(WarehouseUnavailable):
    """The embedded data directory is open in another process."""


class BadDsn(WarehouseError):
    """The DSN names no supported warehouse."""


class MigrationError(WarehouseError):
    """A migration could not be read or applied."""
