"""Warehouse access: the client factory, DSN parsing, migrations and the error hierarchy."""

from analytics.warehouse.client import Warehouse
from analytics.warehouse.dsn import Dsn, parse_dsn
from analytics.warehouse.errors import (
    BadDsn,
    MigrationError,
    WarehouseError,
    WarehouseLocked,
    WarehouseRejected,
    WarehouseUnavailable,
    classify,
    is_transient,
)
from analytics.warehouse.migrations import migrate

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
