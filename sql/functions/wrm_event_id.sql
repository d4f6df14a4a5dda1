-- A lifecycle event's stable id: `msg_` and 32 hex digits of the SHA-256 of its parts (the tenant,
-- the trace it is anchored to, its type, what it is about), each as its
-- byte length, ':' and itself (warehouse/outbox.py event_id computes the same in Python), so the
-- same transition always gets the same id and a second write of it is recognized.
CREATE OR REPLACE FUNCTION wrm_event_id AS (tenant, anchor, type, about) ->
    concat('msg_', substring(lower(hex(SHA256(concat(
        toString(length(tenant)), ':', tenant, toString(length(anchor)), ':', anchor,
        toString(length(type)), ':', type, toString(length(about)), ':', about)))), 1, 32));
