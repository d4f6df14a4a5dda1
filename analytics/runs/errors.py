"""What can go wrong reading or acting on runs; the API renders each as a problem response.

RunsError
 ├── InvalidInput    a bad filter, cursor, format or tag
 ├── UnknownItem     no such run or action for this tenant
 ├── StateConflict   the request contradicts the current state
 └── Busy            every slot for this kind of work is taken; retry shortly
"""

from __future__ import annotations


class RunsError(Exception):
    pass


class InvalidInput(RunsError, ValueError):
    pass


class UnknownItem(RunsError, LookupError):
    pass


class StateConflict(RunsError):
    pass


class Busy(RunsError):
    pass
