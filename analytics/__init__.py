"""WRM analytics: warehouse access, queries, the HTTP API and the SQL endpoint."""
