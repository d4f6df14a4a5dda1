-- sample standard deviation from a sum, a sum of squares and a count
CREATE OR REPLACE FUNCTION wrm_sd AS (s, sq, n) -> if(n < 2, NULL, sqrt(greatest((sq - s * s / n) / (n - 1), 0)));
