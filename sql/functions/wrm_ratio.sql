-- a / b, NULL when there is nothing to divide by.
CREATE OR REPLACE FUNCTION wrm_ratio AS (a, b) -> if(b = 0, NULL, a / b);
