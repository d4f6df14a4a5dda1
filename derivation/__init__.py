"""Derivation jobs: turn stored spans into runs, steps and the daily summary tier, in the
warehouse (assembler, summarizer), and report how far behind ingest they are."""
