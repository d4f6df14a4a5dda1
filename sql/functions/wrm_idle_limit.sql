-- Seconds an unfinished run may go without a span before it is abandoned (spec 4.5): its
-- workflow's human_wait_limit while it waits for a person, else its stale_run_after
-- (wrm_workflow_seconds over the settings' parallel arrays).
CREATE OR REPLACE FUNCTION wrm_idle_limit AS (status, workflow, stale_workflows, stale_seconds, stale_default,
                                               wait_workflows, wait_seconds, wait_default) ->
    if(status = 'waiting_human', wrm_workflow_seconds(workflow, wait_workflows, wait_seconds, wait_default),
       wrm_workflow_seconds(workflow, stale_workflows, stale_seconds, stale_default));
