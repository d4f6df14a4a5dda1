-- A lifecycle event's stable id: `msg_` and 32 hex digits of the SHA-256 of its parts, each as its
-- byte length, ':' and itself (warehouse/outbox.py event_id computes the same in Python), so the
-- same transition always gets the same id and a second write of it is recognized.
CREATE OR REPLACE FUNCTION wrm_event_id AS (tenant, run, type, about) ->
    concat('msg_', substring(lower(hex(SHA256(concat(
        toString(length(tenant)), ':', tenant, toString(length(run)), ':', run,
        toString(length(type)), ':', type, toString(length(about)), ':', about)))), 1, 32));
