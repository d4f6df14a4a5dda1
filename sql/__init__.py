"""WRM's SQL, installed as the package `wrm_sql` (pyproject.toml maps it to this directory) so an
installed wrm reads it through importlib.resources. Layout and apply order: sql/README.md."""
