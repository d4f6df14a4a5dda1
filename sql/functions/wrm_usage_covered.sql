-- Usage counted once (spec 4.4), part 1: a workflow root or an agent span often carries the total
-- of its children, so a span's own tokens or cost count only when none of its descendants reports
-- that measure; when they disagree, the descendants win (their sum was measured call by call).
-- Given one trace's spans as arrays sorted by span id (ids, parent ids) and one measure's own
-- values, the sorted indexes of the spans whose value does not count: each reporting span's
-- nearest reporting ancestor, found by pointer jumping (six rounds: 64 levels, as in
-- assemble_steps). Compute it as a column of its own and pass it to wrm_usage_counted.
CREATE OR REPLACE FUNCTION wrm_usage_covered AS (ids, parents, vals) ->
    arraySort(arrayDistinct(arrayFilter((t, w) -> t > 0 AND w > 0,
        arrayFold((acc, round) -> arrayMap(j -> if(acc[j] = 0 OR vals[acc[j]] > 0, acc[j], acc[acc[j]]),
                                             arrayEnumerate(acc)),
                  range(6), arrayMap(p -> toUInt32(indexOfAssumeSorted(ids, p)), parents)),
        vals)));
