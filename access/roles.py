"""The four roles and what each allows. `ingest` stands apart: it writes spans and nothing else;
viewer < operator < admin each include the one before, and an admin may also ingest."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    INGEST = "ingest"
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether a key of this role may make a call that needs `needed`."""
        if needed is Role.INGEST:
            return self in (Role.INGEST, Role.ADMIN)
        if self is Role.INGEST:
            return False
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
