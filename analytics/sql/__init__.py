"""The read-only SQL port: ClickHouse's HTTP protocol over the warehouse, with its own capacity."""

from analytics.sql.capacity import SqlCapacity, SqlLimits
from analytics.sql.endpoint import build_router

__all__ = ["SqlCapacity", "SqlLimits", "build_router"]
