-- Model prices as rules (analytics/prices.py), and cached input tokens on span_facts.
--
-- price_rules holds the compiled price settings: each `wrm serve` start inserts a new generation
-- (tenant_prices, prices, then the shipped table, in precedence order by rank) and deletes the
-- older ones; the views read only the newest generation present, so a reader never sees a
-- half-written or empty table while a new one is stored. model_prices (003) is no longer read:
-- the same `prices` settings are compiled into price_rules at every start.
--
-- span_facts gains cached_input_tokens, the input tokens read from a prompt cache, first present
-- of gen_ai.usage.cache_read.input_tokens (OTel GenAI), gen_ai.usage.cache_read_input_tokens
-- (OpenLLMetry, older OTel), gen_ai.usage.input_tokens.cached, llm.token_count.prompt_details.cache_read
-- (OpenInference), and the Langfuse usage_details keys cache_read_input_tokens, input_cached_tokens,
-- input_cache_read. span_facts_mv is re-created with it (its text is 002's plus that column);
-- spans stored before keep 0. The drop and the create run at migrate, before ingest starts.
CREATE TABLE IF NOT EXISTS price_rules
(
    generation UInt64,
    rank UInt32,
    tenant_id LowCardinality(String),
    level UInt8,
    pattern String,
    regex String,
    input_usd_per_mtok Float64,
    cached_input_usd_per_mtok Float64,
    output_usd_per_mtok Float64
)
ENGINE = MergeTree
ORDER BY (generation, rank);

ALTER TABLE span_facts ADD COLUMN IF NOT EXISTS cached_input_tokens UInt64 AFTER output_tokens;

DROP VIEW IF EXISTS span_facts_mv;

CREATE MATERIALIZED VIEW span_facts_mv TO span_facts AS
WITH
    attributes AS a,
    resource_attributes AS r,
    parent_span_id = '' AS is_root,
    arrayFirstIndex(n -> n = 'exception', `events.name`) AS exc_i,
    if(exc_i > 0, `events.attributes`[exc_i], map()) AS exc,
    arrayFirstIndex(n -> n = 'gen_ai.evaluation.result', `events.name`) AS eval_i,
    if(eval_i > 0, `events.attributes`[eval_i], map()) AS ev,
    coalesce(nullIf(a['cicd.pipeline.task.run.result'], ''), nullIf(a['cicd.pipeline.result'], '')) AS cicd_result,
    coalesce(nullIf(a['gen_ai.response.model'], ''), nullIf(a['gen_ai.request.model'], ''),
             nullIf(a['llm.response.model_name'], ''), nullIf(a['llm.model_name'], ''),
             nullIf(a['langfuse.observation.model.name'], ''), '') AS model_name,
    multiIf(
        cicd_result IN ('success'), 'completed',
        cicd_result IN ('failure', 'error', 'timeout'), 'failed',
        cicd_result IN ('cancellation'), 'canceled',
        cicd_result IN ('skip'), 'skipped',
        status_code = 'ERROR', 'failed',
        a['error.type'] != '' OR exc_i > 0, 'failed',
        a['langfuse.observation.level'] = 'ERROR', 'failed',
        'completed') AS unified_status,
    lower(coalesce(nullIf(a['wrm.validation.passed'], ''), nullIf(ev['gen_ai.evaluation.score.label'], ''),
                   nullIf(a['evaluation.label'], ''), '')) AS passed_text
SELECT
    tenant_id,
    trace_id,
    span_id,
    parent_span_id,
    name AS span_name,
    service_name,
    start_time,
    end_time,
    duration_ns,
    toUInt8(multiIf(
        a['wrm.run'] IN ('true', '1'), 1,
        is_root AND a['gen_ai.operation.name'] = 'invoke_workflow', 2,
        a['traceloop.span.kind'] = 'workflow', 3,
        is_root AND a['openinference.span.kind'] IN ('CHAIN', 'AGENT'), 4,
        is_root, 5,
        9)) AS run_rank,
    coalesce(nullIf(a['wrm.run.id'], ''), nullIf(r['cicd.pipeline.run.id'], ''), '') AS run_id_attr,
    lower(coalesce(nullIf(a['wrm.run.status'], ''), '')) AS run_status_attr,
    a['wrm.rerun.of'] AS rerun_of,
    coalesce(nullIf(a['wrm.workflow.name'], ''), nullIf(r['wrm.workflow.name'], ''),
             nullIf(a['gen_ai.workflow.name'], ''), nullIf(a['traceloop.workflow.name'], ''),
             nullIf(a['langfuse.trace.name'], ''), '') AS workflow_attr,
    coalesce(nullIf(a['cicd.pipeline.name'], ''), nullIf(r['cicd.pipeline.name'], ''), '') AS pipeline_name,
    a['gen_ai.agent.name'] AS agent_name,
    a['gen_ai.agent.version'] AS agent_version,
    coalesce(nullIf(a['wrm.workflow.version'], ''), nullIf(r['wrm.workflow.version'], ''),
             if(a['traceloop.span.kind'] = 'workflow', nullIf(a['traceloop.entity.version'], ''), NULL),
             nullIf(a['langfuse.version'], ''), '') AS workflow_version_attr,
    r['service.version'] AS service_version,
    coalesce(nullIf(r['deployment.environment.name'], ''), nullIf(a['deployment.environment.name'], ''),
             nullIf(a['langfuse.environment'], ''), nullIf(r['deployment.environment'], ''),
             nullIf(a['deployment.environment'], ''), '') AS environment,
    toUInt8(arrayExists(k -> startsWith(k, 'wrm.step.') OR startsWith(k, 'cicd.pipeline.task.')
                             OR startsWith(k, 'gen_ai.tool.')
                             OR k IN ('gen_ai.operation.name', 'openinference.span.kind', 'traceloop.span.kind',
                                      'langfuse.observation.type', 'llm.request.type', 'gen_ai.request.model',
                                      'gen_ai.response.model'),
                        mapKeys(a))) AS has_step_meaning,
    toUInt8(a['wrm.hitl.state'] = 'requested') AS is_marker,
    coalesce(nullIf(a['wrm.step.name'], ''), nullIf(a['traceloop.entity.name'], ''),
             nullIf(a['gen_ai.tool.name'], ''),
             if(a['gen_ai.operation.name'] IN ('invoke_agent', 'create_agent') OR a['traceloop.span.kind'] = 'agent'
                OR upper(a['openinference.span.kind']) = 'AGENT', nullIf(a['gen_ai.agent.name'], ''), NULL),
             nullIf(a['tool.name'], ''), nullIf(a['agent.name'], ''), nullIf(a['graph.node.name'], ''),
             nullIf(a['cicd.pipeline.task.name'], ''), name) AS step_name,
    multiIf(
        a['wrm.step.type'] != '', lower(a['wrm.step.type']),
        a['langfuse.observation.type'] != '', transform(lower(a['langfuse.observation.type']),
            ['generation', 'tool', 'retriever', 'embedding', 'agent', 'guardrail', 'evaluator'],
            ['llm', 'tool', 'retrieval', 'retrieval', 'agent', 'validation', 'validation'], 'other'),
        a['openinference.span.kind'] != '', transform(upper(a['openinference.span.kind']),
            ['LLM', 'TOOL', 'RETRIEVER', 'RERANKER', 'EMBEDDING', 'AGENT', 'GUARDRAIL', 'EVALUATOR'],
            ['llm', 'tool', 'retrieval', 'retrieval', 'retrieval', 'agent', 'validation', 'validation'], 'other'),
        a['gen_ai.operation.name'] != '', transform(a['gen_ai.operation.name'],
            ['chat', 'text_completion', 'generate_content', 'execute_tool', 'retrieval', 'embeddings',
             'search_memory', 'invoke_agent', 'create_agent', 'plan', 'apply_guardrail'],
            ['llm', 'llm', 'llm', 'tool', 'retrieval', 'retrieval', 'retrieval', 'agent', 'agent', 'agent',
             'validation'], 'other'),
        a['traceloop.span.kind'] != '', transform(a['traceloop.span.kind'], ['tool', 'agent'], ['tool', 'agent'], 'other'),
        a['llm.request.type'] != '', 'llm',
        model_name != '', 'llm',
        arrayExists(k -> startsWith(k, 'gen_ai.tool.'), mapKeys(a)), 'tool',
        startsWith(a['cicd.pipeline.task.type'], 'test'), 'validation',
        'other') AS step_type,
    toUInt32OrZero(a['wrm.step.attempt']) AS attempt_attr,
    unified_status AS status,
    coalesce(cicd_result, nullIf(a['langfuse.observation.level'], ''), status_code) AS source_status,
    if(unified_status = 'failed',
       coalesce(nullIf(a['error.type'], ''), nullIf(exc['exception.type'], ''), ''), '') AS error_type,
    if(unified_status = 'failed',
       coalesce(nullIf(exc['exception.message'], ''), nullIf(status_message, ''),
                nullIf(a['langfuse.observation.status_message'], ''), ''), '') AS error_message,
    toUInt64OrZero(coalesce(nullIf(a['gen_ai.usage.input_tokens'], ''), nullIf(a['gen_ai.usage.prompt_tokens'], ''),
                            nullIf(a['llm.token_count.prompt'], ''),
                            nullIf(JSONExtractRaw(a['langfuse.observation.usage_details'], 'input'), ''),
                            '')) AS input_tokens,
    toUInt64OrZero(coalesce(nullIf(a['gen_ai.usage.output_tokens'], ''),
                            nullIf(a['gen_ai.usage.completion_tokens'], ''),
                            nullIf(a['llm.token_count.completion'], ''),
                            nullIf(JSONExtractRaw(a['langfuse.observation.usage_details'], 'output'), ''),
                            '')) AS output_tokens,
    toUInt64OrZero(coalesce(nullIf(a['gen_ai.usage.cache_read.input_tokens'], ''),
                            nullIf(a['gen_ai.usage.cache_read_input_tokens'], ''),
                            nullIf(a['gen_ai.usage.input_tokens.cached'], ''),
                            nullIf(a['llm.token_count.prompt_details.cache_read'], ''),
                            nullIf(JSONExtractRaw(a['langfuse.observation.usage_details'], 'cache_read_input_tokens'), ''),
                            nullIf(JSONExtractRaw(a['langfuse.observation.usage_details'], 'input_cached_tokens'), ''),
                            nullIf(JSONExtractRaw(a['langfuse.observation.usage_details'], 'input_cache_read'), ''),
                            '')) AS cached_input_tokens,
    coalesce(toFloat64OrNull(a['wrm.cost.usd']), toFloat64OrNull(a['llm.cost.total']),
             if(a['langfuse.observation.cost_details'] != '',
                JSONExtract(a['langfuse.observation.cost_details'], 'total', 'Nullable(Float64)'), NULL)) AS cost_attr,
    model_name AS model,
    coalesce(nullIf(a['wrm.validation.name'], ''), nullIf(ev['gen_ai.evaluation.name'], ''),
             if(passed_text != '', nullIf(a['evaluation.name'], ''), NULL),
             if(startsWith(a['cicd.pipeline.task.type'], 'test'), nullIf(a['cicd.pipeline.task.name'], ''), NULL),
             if(passed_text != '', name, ''), '') AS validation_name,
    multiIf(passed_text IN ('true', '1', 'pass', 'passed', 'ok'), toNullable(toUInt8(1)),
            passed_text IN ('false', '0', 'fail', 'failed'), toNullable(toUInt8(0)),
            startsWith(a['cicd.pipeline.task.type'], 'test') AND cicd_result != '',
                toNullable(toUInt8(cicd_result = 'success')),
            NULL) AS validation_passed,
    coalesce(toFloat64OrNull(a['wrm.quality.score']), toFloat64OrNull(a['gen_ai.evaluation.score.value']),
             toFloat64OrNull(ev['gen_ai.evaluation.score.value']), toFloat64OrNull(a['evaluation.score']),
             toFloat64OrNull(a['annotation.score'])) AS quality_score,
    toFloat64OrNull(a['wrm.cx.score']) AS cx_score,
    lower(a['wrm.hitl.state']) AS hitl_state,
    lower(coalesce(nullIf(a['wrm.hitl.decision'], ''),
                   if(upper(a['annotation.annotator_kind']) = 'HUMAN', nullIf(a['annotation.label'], ''), NULL),
                   '')) AS hitl_decision,
    a['wrm.hitl.actor'] AS hitl_actor,
    coalesce(nullIf(a['user.id'], ''), nullIf(a['enduser.id'], ''), nullIf(a['langfuse.user.id'], ''),
             nullIf(a['traceloop.association.properties.user_id'], ''), '') AS user_id,
    coalesce(nullIf(a['session.id'], ''), nullIf(a['gen_ai.conversation.id'], ''),
             nullIf(a['langfuse.session.id'], ''), nullIf(a['traceloop.association.properties.session_id'], ''),
             '') AS session_id,
    a AS attributes,
    retention_days,
    ingested_at
FROM spans;
