"""Placeholder: being written (issue 17)."""

from __future__ import annotations

from fastapi import APIRouter

from console.base import Console


def add_routes(router: APIRouter, console: Console) -> None:
    pass
