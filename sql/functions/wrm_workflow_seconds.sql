-- A per-workflow duration setting in seconds (stale_run_after, human_wait_limit): the settings
-- reach SQL as parallel arrays (workflow names, their seconds) and the default, all bound parameters.
CREATE OR REPLACE FUNCTION wrm_workflow_seconds AS (workflow, workflows, seconds, default_seconds) ->
    toUInt64(transform(toString(workflow), workflows, seconds, default_seconds));
