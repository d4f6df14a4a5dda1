"""WRM composition root: the `wrm` command line and settings."""
