"""Access control: API keys with roles, scoped to a tenant; who may do what; the audit trail.

Imports only `warehouse`; the receiver (OTLP) and analytics (API, SQL port) both authenticate
through `Authenticator`, so a key means the same on every port.

AccessError
 ├── Unauthenticated   no key, an unknown or revoked key: gRPC UNAUTHENTICATED, HTTP 401
 └── Forbidden         a valid key whose role or tenant does not allow the call: PERMISSION_DENIED, 403
"""

from access.authenticator import Authenticator
from access.errors import AccessError, Forbidden, Unauthenticated
from access.keys import PLATFORM, Principal
from access.mode import AuthMode, resolve_auth
from access.roles import Role

__all__ = [
    "PLATFORM",
    "AccessError",
    "AuthMode",
    "Authenticator",
    "Forbidden",
    "Principal",
    "Role",
    "Unauthenticated",
    "resolve_auth",
]
