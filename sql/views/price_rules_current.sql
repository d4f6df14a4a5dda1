-- The price rules in force: the newest generation stored (analytics/prices.py writes one at every
-- start and then deletes the older ones), in precedence order (rank). `prices` packs them as
-- arrays in rank order for the pricing views, which read it as one scalar subquery.
CREATE OR REPLACE VIEW price_rules_current AS
SELECT groupArray(regex) AS regexes, groupArray(tenant_id) AS tenants, groupArray(pattern) AS patterns,
       groupArray(input_usd_per_mtok) AS input_prices,
       groupArray(cached_input_usd_per_mtok) AS cached_input_prices,
       groupArray(output_usd_per_mtok) AS output_prices
FROM (SELECT * FROM price_rules WHERE generation = (SELECT max(generation) FROM price_rules) ORDER BY rank);
