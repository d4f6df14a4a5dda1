-- Span facts with their cost: the cost attribute, else tokens × the model's newest price, else 0.
-- Both assembly views read it with a (tenant_id, trace_id) filter, which ClickHouse pushes into
-- span_facts' primary key (checked with EXPLAIN indexes = 1).
CREATE OR REPLACE VIEW priced_span_facts AS
SELECT f.*, coalesce(f.cost_attr, (f.input_tokens * p.input_usd_per_mtok + f.output_tokens * p.output_usd_per_mtok) / 1e6, 0)
           AS cost
FROM span_facts AS f FINAL
LEFT JOIN (SELECT model, argMax(input_usd_per_mtok, updated_at) AS input_usd_per_mtok,
                  argMax(output_usd_per_mtok, updated_at) AS output_usd_per_mtok
           FROM model_prices GROUP BY model) AS p ON p.model = f.model;
