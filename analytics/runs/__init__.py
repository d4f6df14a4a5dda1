"""Runs and steps for the API: filters, cursors, queries, timelines, and operator actions."""
