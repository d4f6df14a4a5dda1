"""Shared warehouse infrastructure: the client factory, DSN parsing, the error classes, migrations,
retention tiers and the tenant-id rule. Imported by receiver/, derivation/ and analytics/; imports none
of them."""

from warehouse.client import Warehouse
from warehouse.dsn import Dsn, parse_dsn
from warehouse.errors import (
    BadDsn,
    MigrationError,
    WarehouseError,
    WarehouseLocked,
    WarehouseRejected,
    WarehouseUnavailable,
    classify,
    is_transient,
)
from warehouse.migrations import migrate

__all__ = [
    "BadDsn",
    "Dsn",
    "MigrationError",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "WarehouseRejected",
    "WarehouseUnavailable",
    "classify",
    "is_transient",
    "migrate",
    "parse_dsn",
]
