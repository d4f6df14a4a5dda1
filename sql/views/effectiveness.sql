-- One row per tenant/workflow/version/environment/day.
CREATE OR REPLACE VIEW effectiveness AS
SELECT * FROM effectiveness_window(since = '1970-01-01', until = '2149-06-06', by_day = 1);
