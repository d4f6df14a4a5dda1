"""The HTTP side of `wrm serve`: health, metrics, the SQL endpoint (and, later, the /v1 API)."""

from analytics.api.app import create_app

__all__ = ["create_app"]
