"""The write path: OTLP in → validated span records → rows in the warehouse.

transport (grpc_transport) → parse and screen (pure) → writer (group commit) → store (the
warehouse decodes the protobuf into span rows) → assembler (runs and steps, in SQL).
"""
