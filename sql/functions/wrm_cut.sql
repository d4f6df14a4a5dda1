-- Cut a value to `lim` bytes on a UTF-8 boundary; the cut value ends with the marker.
CREATE OR REPLACE FUNCTION wrm_cut AS (s, lim) -> if(length(s) <= lim, s,
    concat(replaceRegexpOne(toValidUTF8(substring(s, 1, lim - 24)), '\xEF\xBF\xBD$', ''), '…[truncated by wrm]'));
