"""Prometheus metrics of a worker (served on `metrics_port`, path /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_IN = Counter("minhu_events_in_total", "Records consumed", ["topic", "type"])
EVENTS_OUT = Counter("minhu_events_out_total", "Records produced", ["topic", "type"])
ROUTING_LATENCY = Histogram(
    "minhu_routing_latency_seconds",
    "From an intake record reaching the broker to its case being dispatched",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERS = Counter("minhu_dead_letters_total", "Records refused", ["error_kind"])
DUPLICATES = Counter("minhu_duplicates_total", "Records whose source and id were seen before")
ESCALATIONS = Counter("minhu_escalations_total", "Cases escalated", ["reason"])
LIFE_SAFETY = Counter(
    "minhu_life_safety_total",
    "Live critical alarms and urgent appeals decided ahead of their turn (the life-safety "
    "lane), by what read them: the lane's own consumer, or Faust's",
    ["read_by"],
)
SLA_BREACHES = Counter("minhu_sla_breaches_total", "Deadlines passed", ["clock"])
# minhu_open_cases{tier} is counted from the engines at each scrape (worker.OpenCases).
