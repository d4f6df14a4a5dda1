"""The write path: OTLP in → validated span records → rows in the warehouse.

transport (grpc_transport) → decode (pure) → writer (group commit) → store (warehouse insert).
"""
