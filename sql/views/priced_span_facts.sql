-- Span facts with their cost: the cost attribute, else tokens × the price of the first price rule
-- (price_rules_current: tenant_prices, then prices, then the shipped table) that matches the
-- model name for the span's tenant, else 0.
--   cost = ((input − cached) × input price + cached × cached-input price + output × output price) / 1e6
-- Cached input tokens are taken as part of the input tokens (OTel: input_tokens includes them);
-- when a span reports more cached than input tokens, its input count is taken to exclude them
-- (Anthropic's own usage fields): its input tokens are priced as uncached, its cached ones as cached.
-- price_rule is the matching rule's pattern ('' none); unpriced = 1 for a span with a model
-- name or tokens that no cost attribute or rule prices (its cost, 0, understates the run's).
--
-- The rules are one constant (a scalar subquery), so multiMatchAllIndices compiles them once per
-- query with Hyperscan and, the model being LowCardinality, runs once per distinct model name of
-- each block rather than per span. Both assembly views read this view with a (tenant_id,
-- trace_id) filter, which ClickHouse pushes into span_facts' primary key (checked with EXPLAIN
-- indexes = 1).
CREATE OR REPLACE VIEW priced_span_facts AS
WITH
    (SELECT (regexes, tenants, patterns, input_prices, cached_input_prices, output_prices)
     FROM price_rules_current) AS rules,
    arrayFirst(i -> rules.2[i] = '' OR rules.2[i] = f.tenant_id,
               arraySort(multiMatchAllIndices(f.model, rules.1))) AS rule,
    if(f.cached_input_tokens <= f.input_tokens, f.input_tokens - f.cached_input_tokens, f.input_tokens) AS uncached_in
SELECT f.*,
       coalesce(f.cost_attr,
                if(rule > 0 AND f.model != '',
                   (uncached_in * rules.4[rule] + f.cached_input_tokens * rules.5[rule]
                    + f.output_tokens * rules.6[rule]) / 1e6,
                   NULL),
                0) AS cost,
       if(rule > 0 AND f.model != '', rules.3[rule], '') AS price_rule,
       toUInt8(f.cost_attr IS NULL AND (rule = 0 OR f.model = '') AND f.input_tokens + f.output_tokens > 0)
           AS unpriced
FROM span_facts AS f FINAL;
