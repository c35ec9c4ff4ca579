"""A trigger's chart data from Coralogix: the alert's definition, then its series over the range.

Metric alerts through the Prometheus-compatible `query_range` (the PromQL without its comparison,
one point per evaluation window); log alerts through DataPrime (the alert's query counted per
evaluation window, windows without logs counted as 0). Whatever Coralogix refuses (a key without
`alerts:ReadConfig`, `metrics.data-api#high:ReadData` or `logs.data-api#high:ReadData`) comes back
as the client's CxError; no data at all is ChartUnavailable("no_data").
"""

from __future__ import annotations

import time
from typing import Any

from cxslack.charts.model import (
    MAX_SERIES,
    AlertQuery,
    ChartData,
    ChartUnavailable,
    Series,
    Trigger,
    alert_query,
    alert_triggers,
    chart_range,
    parse_time,
    rfc3339,
)
from cxslack.coralogix.alerts import alert_definition
from cxslack.coralogix.client import CoralogixClient
from cxslack.coralogix.data import dataprime_rows, query_range
from cxslack.errors import EXIT_NOT_FOUND


def chart_data(
    client: CoralogixClient, case: dict[str, Any], trigger: Trigger, now: float | None = None
) -> ChartData:
    """The data of one trigger's chart; raises ChartUnavailable or the Coralogix client's CxError."""
    query = alert_query(alert_definition(client, trigger.alert_id, trigger.version_id))
    start, end, step = chart_range(trigger, query.window, time.time() if now is None else now)
    series = _metric_series(client, query, start, end, step) if query.kind == "metric" else \
        _log_series(client, query, start, end, step)  # fmt: skip
    if not any(s.points for s in series):
        raise ChartUnavailable(
            "no_data",
            f"Coralogix has no data for alert {query.name!r} from {rfc3339(start)} to {rfc3339(end)}",
        )
    name = str(case.get("readableId") or case.get("id") or "")
    return ChartData(name, trigger, query, start, end, step, tuple(series))


def pick_trigger(case: dict[str, Any], alert_id: str | None = None) -> Trigger:
    """The Case's latest trigger (of `alert_id`, when given)."""
    triggers = [t for t in alert_triggers(case) if alert_id is None or t.alert_id == alert_id]
    if triggers:
        return triggers[0]
    name = case.get("readableId") or case.get("id")
    if alert_id is not None:
        raise ChartUnavailable("alert_not_in_case", f"Case {name} has no alert indicator of alert {alert_id}",
                               f"See the Case's alerts: cxslack cases show {name} -o json", exit_code=EXIT_NOT_FOUND)  # fmt: skip
    raise ChartUnavailable(
        "no_alert_indicators", f"Case {name} has no alert indicators, so there is no alert to chart",
        exit_code=EXIT_NOT_FOUND,
    )  # fmt: skip


def _metric_series(
    client: CoralogixClient, query: AlertQuery, start: float, end: float, step: float
) -> list[Series]:
    samples = query_range(client, query.query, start, end, step)
    ranked = sorted(samples, key=lambda s: max(v for _, v in s.points), reverse=True)[:MAX_SERIES]
    return [Series(_label(s.labels, query.name), s.points) for s in ranked]


def _label(labels: dict[str, str], fallback: str) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    text = shown or labels.get("__name__") or fallback
    return text if len(text) <= 60 else text[:59] + "…"


def _log_series(
    client: CoralogixClient, query: AlertQuery, start: float, end: float, step: float
) -> list[Series]:
    counts: dict[float, float] = {}
    for row in dataprime_rows(client, query.query, start, end):
        at, count = parse_time(row.get("bucket")), row.get("count")
        if at is None or isinstance(count, bool) or not isinstance(count, int | float):
            continue
        bucket = start + ((at - start) // step) * step
        counts[bucket] = counts.get(bucket, 0.0) + float(count)
    if not counts:
        return []
    buckets = [start + i * step for i in range(int((end - start) // step))]
    return [Series("logs per window", tuple((b, counts.get(b, 0.0)) for b in buckets))]
