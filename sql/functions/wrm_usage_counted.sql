-- Usage counted once (spec 4.4), part 2: one measure's own values with those of the spans in
-- `covered` (wrm_usage_covered: spans whose descendants report the measure) set to zero.
CREATE OR REPLACE FUNCTION wrm_usage_counted AS (vals, covered) ->
    arrayMap((v, i) -> if(v > 0 AND indexOfAssumeSorted(covered, i) = 0, v, 0), vals, arrayEnumerate(vals));
