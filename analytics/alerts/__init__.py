"""Alert rules: a metric of a scope's runs over a window, compared with a threshold every
interval; `ok → firing → resolved (= ok)` with hysteresis and a minimum sample size, each
transition kept in alert_history and sent as an `alert.firing` / `alert.resolved` event.

Modules: `rules` (metrics, fields, defaults, checks across fields), `schemas` (what /v1/alerts
takes and shows), `store` (rules and transitions in the warehouse), `metrics` (one query per
metric), `states` (the state machine, pure), `evaluator` (the background thread).
"""

from analytics.alerts.evaluator import AlertEvaluator, Evaluation, RuleStatus
from analytics.alerts.rules import METRICS, Rule
from analytics.alerts.store import RuleStore

__all__ = ["METRICS", "AlertEvaluator", "Evaluation", "Rule", "RuleStatus", "RuleStore"]
