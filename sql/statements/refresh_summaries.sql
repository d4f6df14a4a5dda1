-- Recompute the daily summaries of the days noted in (since, until] (summary_dirty.noted_ms) that
-- are still inside run retention (runs_*); summary rows are kept for keep_* days.
INSERT INTO runs_daily_store
SELECT * FROM summarize_runs(
    since = {since:Int64}, until = {until:Int64},
    runs_tenants = {runs_tenants:Array(String)}, runs_days = {runs_days:Array(UInt16)},
    runs_default = {runs_default:UInt16}, keep_tenants = {keep_tenants:Array(String)},
    keep_days = {keep_days:Array(UInt16)}, keep_default = {keep_default:UInt16})
