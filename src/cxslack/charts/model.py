"""What an alert evaluation chart shows, independent of how it is drawn or where it goes.

A Case's alert indicators (`caseIndicators.alertIndicators[]`, cases.yaml AlertIndicator) say which
alert triggered when (`alertId`, `latestAlertVersion`, `triggerTime`, `resolveTime`); the alert's
definition (alerts v3) says what it evaluates — a metric alert's PromQL and threshold, a log
alert's query and count threshold — and over which window. A chart covers twenty of those windows
before the trigger and up to five after the resolve (or now), one point per window.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxslack.charts.promql import split_comparison
from cxslack.coralogix.data import rfc3339
from cxslack.errors import CxError

BEFORE_WINDOWS = 20  # evaluation windows shown before the trigger
AFTER_WINDOWS = 5  # and after the resolve (or the trigger), until now
MAX_POINTS = 500  # per series: a range that would need more is cut at its end
MAX_SERIES = 6  # a metric expression that gives more series shows those that peak highest

_METRIC_WINDOWS = {
    "MINUTES_1_OR_UNSPECIFIED": 60, "MINUTES_5": 300, "MINUTES_10": 600, "MINUTES_15": 900,
    "MINUTES_20": 1200, "MINUTES_30": 1800, "HOUR_1": 3600, "HOURS_2": 7200, "HOURS_4": 14400,
    "HOURS_6": 21600, "HOURS_12": 43200, "HOURS_24": 86400, "HOURS_36": 129600,
}  # fmt: skip
_LOGS_WINDOWS = {**_METRIC_WINDOWS, "MINUTES_5_OR_UNSPECIFIED": 300}
_OPERATOR = {"MORE_THAN_OR_UNSPECIFIED": ">", "MORE_THAN": ">", "LESS_THAN": "<",
             "MORE_THAN_OR_EQUALS": ">=", "LESS_THAN_OR_EQUALS": "<="}  # fmt: skip
_SEVERITY = {"VERBOSE_UNSPECIFIED": "VERBOSE", "DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING",
             "ERROR": "ERROR", "CRITICAL": "CRITICAL"}  # fmt: skip
_LABEL_FIELDS = {"applicationName": "$l.applicationname", "subsystemName": "$l.subsystemname"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ChartUnavailable(CxError):
    """There is no chart to draw for this trigger (unsupported alert type, no data, …)."""


@dataclass(frozen=True)
class Trigger:
    """One alert indicator of a Case: which alert, when it triggered and resolved."""

    alert_id: str
    version_id: str | None
    at: float  # unix seconds
    resolved: float | None
    state: str
    when: str  # triggerTime as Coralogix gave it: part of the chart's once-only key

    def to_json(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "version_id": self.version_id, "trigger_time": self.when,
                "resolve_time": rfc3339(self.resolved) if self.resolved else None, "state": self.state}  # fmt: skip


def alert_triggers(case: dict[str, Any]) -> list[Trigger]:
    """The Case's alert indicators that name an alert and a trigger time, latest trigger first."""
    indicators = _obj(case.get("caseIndicators"))
    found = []
    for item in indicators.get("alertIndicators") or []:
        if not isinstance(item, dict) or not isinstance(item.get("alertId"), str):
            continue
        at = parse_time(item.get("triggerTime"))
        if at is None:
            continue
        version = item.get("latestAlertVersion")
        state = str(item.get("state") or "").removeprefix("INDICATOR_STATE_").lower() or "unspecified"
        found.append(Trigger(item["alertId"], version if isinstance(version, str) and version else None, at,
                             parse_time(item.get("resolveTime")), state, str(item["triggerTime"])))  # fmt: skip
    return sorted(found, key=lambda t: t.at, reverse=True)


@dataclass(frozen=True)
class AlertQuery:
    """What an alert evaluates, as a query cxslack can run over time."""

    alert_id: str
    name: str
    type: str  # AlertDefType without its prefix: METRIC_THRESHOLD, LOGS_THRESHOLD
    kind: str  # metric | logs
    query: str  # PromQL (without its comparison) or DataPrime
    window: int  # the evaluation window, seconds
    threshold: float | None
    operator: str | None  # how the value is compared with the threshold: > < >= <=

    def to_json(self) -> dict[str, Any]:
        return {"id": self.alert_id, "name": self.name, "type": self.type, "kind": self.kind,
                "query": self.query, "window_seconds": self.window, "threshold": self.threshold,
                "operator": self.operator}  # fmt: skip


def alert_query(alert_def: dict[str, Any]) -> AlertQuery:
    """The query for a metric threshold or log threshold alert; ChartUnavailable for other types."""
    props = _obj(alert_def.get("alertDefProperties"))
    name = str(props.get("name") or alert_def.get("id") or "alert")
    alert_id = str(alert_def.get("id") or "")
    kind = str(props.get("type") or "").removeprefix("ALERT_DEF_TYPE_")
    if isinstance(props.get("metricThreshold"), dict):
        spec = props["metricThreshold"]
        rules = spec.get("rules") if isinstance(spec.get("rules"), list) else []
        condition = _first_condition(rules)
        promql = str(_obj(spec.get("metricFilter")).get("promql") or "").strip()
        if not promql:
            raise ChartUnavailable("unsupported_alert", f"alert {name!r} has no PromQL to evaluate")
        split = split_comparison(promql)
        threshold = _threshold(condition)
        if threshold == 0.0 and "threshold" not in condition and split.value is not None:
            threshold = None  # nothing said: the PromQL's own comparison is the threshold
        operator = _operator(condition.get("conditionType")) if threshold is not None else split.operator
        return AlertQuery(alert_id, name, kind or "METRIC_THRESHOLD", "metric", split.expression,
                          _metric_window(condition.get("ofTheLast")),
                          threshold if threshold is not None else split.value, operator)  # fmt: skip
    if isinstance(props.get("logsThreshold"), dict):
        spec = props["logsThreshold"]
        rules = spec.get("rules") if isinstance(spec.get("rules"), list) else []
        condition = _first_condition(rules)
        window = _window(((condition.get("timeWindow") or {}).get("logsTimeWindowSpecificValue")), _LOGS_WINDOWS,
                         "LOGS_TIME_WINDOW_VALUE_", 300)  # fmt: skip
        simple = (
            (((spec.get("logsFilter") or {}).get("simpleFilter")) or {})
            if isinstance(spec.get("logsFilter"), dict)
            else {}
        )
        return AlertQuery(alert_id, name, kind or "LOGS_THRESHOLD", "logs", log_count_query(simple, window),
                          window, _threshold(condition), _operator(condition.get("conditionType")))  # fmt: skip
    shown = kind.replace("_", " ").lower() or "this kind of"
    raise ChartUnavailable(
        "unsupported_alert_type",
        f"alert {name!r} is a {shown} alert; evaluation charts are drawn for metric threshold and log "
        "threshold alerts",
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_condition(rules: list[Any]) -> dict[str, Any]:
    """The first rule's condition; `_present` marks one that was there, even with every field at
    its default (protobuf JSON then sends `{}`)."""
    for rule in rules:
        if isinstance(rule, dict) and isinstance(rule.get("condition"), dict):
            return {**rule["condition"], "_present": True}
    return {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _threshold(condition: dict[str, Any]) -> float | None:
    """A condition's `threshold` (a double). protobuf JSON leaves a zero out, so a condition without
    one is "more than 0" (the usual "any error" alert), not a condition without a threshold."""
    if condition.get("_present") and "threshold" not in condition:
        return 0.0
    return _number(condition.get("threshold"))


def _operator(condition_type: Any) -> str:
    text = str(condition_type or "")
    return next((op for suffix, op in _OPERATOR.items() if text.endswith(suffix)), ">")


def _window(value: Any, table: dict[str, int], prefix: str, default: int) -> int:
    return table.get(str(value or "").removeprefix(prefix), default)


def _metric_window(of_the_last: Any) -> int:
    """MetricTimeWindow: a specific value (an enum) or a dynamic duration such as "1h30m"."""
    if not isinstance(of_the_last, dict):
        return 60
    dynamic = of_the_last.get("metricTimeWindowDynamicDuration")
    if isinstance(dynamic, str) and dynamic.strip():
        seconds = parse_duration(dynamic)
        if seconds:
            return max(1, round(seconds))
    return _window(
        of_the_last.get("metricTimeWindowSpecificValue"), _METRIC_WINDOWS, "METRIC_TIME_WINDOW_VALUE_", 60
    )


def parse_duration(text: str) -> float | None:
    """A Go-style duration ("1h30m", "90s") in seconds; None when it is not one."""
    compact = text.strip()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def log_count_query(simple_filter: dict[str, Any], window: int) -> str:
    """DataPrime counting the alert's logs per evaluation window: its Lucene query, its label and
    severity filters, then `groupby roundTime($m.timestamp, window)`."""
    steps = ["source logs"]
    lucene = simple_filter.get("luceneQuery")
    if isinstance(lucene, str) and lucene.strip():
        steps.append(f"lucene {_string(lucene.strip())}")
    conditions = []
    labels = _obj(simple_filter.get("labelFilters"))
    for name, field in _LABEL_FIELDS.items():
        terms = [_label_term(field, f) for f in labels.get(name) or [] if isinstance(f, dict)]
        if any(terms):
            conditions.append("(" + " || ".join(t for t in terms if t) + ")")
    severities = [_SEVERITY.get(str(s).removeprefix("LOG_SEVERITY_")) for s in labels.get("severities") or []]
    if any(severities):
        conditions.append("(" + " || ".join(f"$m.severity == {s}" for s in severities if s) + ")")
    if conditions:
        steps.append("filter " + " && ".join(conditions))
    steps.append(f"groupby roundTime($m.timestamp, {interval(window)}) as bucket aggregate count() as count")
    return " | ".join(steps)


def _label_term(field: str, label_filter: dict[str, Any]) -> str | None:
    value = label_filter.get("value")
    if not isinstance(value, str):
        return None
    operation = str(label_filter.get("operation") or "").removeprefix("LOG_FILTER_OPERATION_TYPE_")
    function = {"INCLUDES": "contains", "STARTS_WITH": "startsWith", "ENDS_WITH": "endsWith"}.get(operation)
    return f"{function}({field}, {_string(value)})" if function else f"{field} == {_string(value)}"


def _string(value: str) -> str:
    """A DataPrime string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interval(seconds: int) -> str:
    """A DataPrime interval literal: 5m, 1h, 36h, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def chart_range(trigger: Trigger, window: int, now: float) -> tuple[float, float, float]:
    """(start, end, step) around a trigger: BEFORE_WINDOWS windows before it, AFTER_WINDOWS after
    the resolve (or the trigger) but not past now, one point per window, aligned to the window."""
    step = float(max(1, window))
    last = max(trigger.at, trigger.resolved or trigger.at)
    start = math.floor((trigger.at - BEFORE_WINDOWS * step) / step) * step
    end = max(min(now, last + AFTER_WINDOWS * step), trigger.at + step)
    end = min(math.ceil(end / step) * step, start + MAX_POINTS * step)
    return start, end, step


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]  # (unix seconds, value)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "points": [[t, v] for t, v in self.points]}


@dataclass(frozen=True)
class ChartData:
    """Everything a chart shows: the series as queried, the threshold, the trigger and resolve."""

    case: str
    trigger: Trigger
    alert: AlertQuery
    start: float
    end: float
    step: float
    series: tuple[Series, ...]

    @property
    def title(self) -> str:
        return self.alert.name

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "alert": self.alert.to_json(), "trigger": self.trigger.to_json(),
                "start": rfc3339(self.start), "end": rfc3339(self.end), "step_seconds": self.step,
                "series": [s.to_json() for s in self.series]}  # fmt: skip


def parse_time(value: Any) -> float | None:
    """Unix seconds from an RFC 3339 string (Coralogix's date-time) or a number of seconds, ms,
    µs or ns since the epoch (DataPrime gives timestamps as nanoseconds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        for scale in (1e9, 1e6, 1e3):  # ns, µs, ms
            if abs(number) > scale * 1e8:  # past 1973 in that unit
                return number / scale
        return number
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_time(float(text))
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))  # at most microseconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None
