"""Coralogix on the sandbox, continued: alert definitions and the data behind them.

What an alert evaluation chart reads, in the published shapes:

    GET  /mgmt/openapi/5/alerts/alerts/v3/{id}                        {alertDef}   alerts:ReadConfig
    GET  /mgmt/openapi/5/alerts/alerts/v3/version-ids/{version_id}    {alertDef}   alerts:ReadConfig
    GET  /metrics/api/v1/query_range?query&start&end&step   Prometheus JSON   metrics.data-api#high:ReadData
    POST /api/v1/dataprime/query  {query, metadata}         NDJSON            logs.data-api#high:ReadData

Seeded: CASE-1 carries a triggered metric threshold alert (CPU above 90% on checkout-api), CASE-2
a log threshold alert (payment errors), CASE-4 a metric alert that triggered and resolved, CASE-5
a tracing alert (no evaluation series to chart); CASE-3 has no alert indicator. Their series are
deterministic functions of time that cross the threshold at the trigger (and back at the resolve),
so `sandbox demo` draws the same picture every time. The metrics API knows a series by its PromQL;
the DataPrime API runs the one shape cxslack sends — `lucene '…'` (which selects the seeded log
stream), other filters accepted as they come, then `groupby roundTime($m.timestamp, I) as bucket
aggregate count() as count` — and answers an empty result for anything else.

Admin routes (JSON, not Coralogix's API):
  GET  /_sandbox/coralogix/alerts                 the alert definitions
  POST /_sandbox/coralogix/alerts                 add or replace one {alert: AlertDef}
  POST /_sandbox/coralogix/alerts/indicator       give a Case an alert indicator {case, alert_id,
                                                  trigger_time?, resolve_time?} (times RFC 3339)
  POST /_sandbox/coralogix/metrics                a PromQL query's series from now on {query, points: [[t, v]…]}
                                                  ([] for an empty series)
  POST /_sandbox/coralogix/log-counts             a Lucene query's counts {lucene, counts: [[t, n]…]}
  GET/POST /_sandbox/coralogix/data-permissions   the API key's permissions here {permissions: [...]}
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cxslack.sandbox.coralogix import (
    CORALOGIX_ADMIN_PREFIX,
    CORALOGIX_API_KEY,
    INVALID_ARGUMENT,
    NOT_FOUND,
    Rule,
    admit,
    grpc_error,
    rfc3339,
)
from cxslack.sandbox.wire import AdminError, Body, Request, Response, Router, json_route

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

ALERTS_PREFIX = "/mgmt/openapi/5/alerts/alerts/v3/"
QUERY_RANGE_PATH = "/metrics/api/v1/query_range"
DATAPRIME_PATH = "/api/v1/dataprime/query"
ALERTS_YAML = "coralogix-openapi-v5/alerts-integrations.yaml"
METRICS_DOC = "coralogix.com/docs/user-guides/data-query/metrics-api (Prometheus-compatible)"
PROMETHEUS_DOC = "prometheus.io/docs/prometheus/latest/querying/api/#range-queries"
DATAPRIME_DOC = "coralogix.com/docs/dataprime/API/direct-archive-query-http"
READ_ALERTS = "alerts:ReadConfig"
READ_METRICS = "metrics.data-api#high:ReadData"
READ_LOGS = "logs.data-api#high:ReadData"
DATA_PERMISSIONS = (READ_ALERTS, READ_METRICS, READ_LOGS)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # Prometheus and DataPrime duration units
MAX_POINTS = 11_000  # Prometheus: "exceeded maximum resolution of 11,000 points per timeseries"

RULES: tuple[Rule, ...] = (
    Rule("a missing or unknown API key: 401", f"{ALERTS_YAML}: 401 Unauthorized request; {METRICS_DOC}: Authorization: Bearer <API-Key>"),
    Rule("reading an alert without alerts:ReadConfig: 403 PERMISSION_DENIED", f"{ALERTS_YAML}: x-coralogixPermissions alerts:ReadConfig"),
    Rule("an alert or alert version that does not exist: 404 NOT_FOUND", f"{ALERTS_YAML}: GetAlertDef, GetAlertDefByVersionId"),
    Rule("query_range without metrics.data-api#high:ReadData: 403", f"{METRICS_DOC}: 'Query Metrics permission: metrics.data-api#high:ReadData'"),
    Rule("query_range without query, start, end or step, with end before start, a step of 0 or less, "
         "or more than 11,000 points: 400 bad_data", f"{PROMETHEUS_DOC}"),
    Rule("a DataPrime query without logs.data-api#high:ReadData: 403", f"{DATAPRIME_DOC}: the DataQuerying preset, LOGS.DATA-API#HIGH:READDATA"),
    Rule("a DataPrime request without `query`, or with a startDate/endDate that is not RFC 3339: 400",
         f"{DATAPRIME_DOC}: 'The only required field in the API body is query'; dates in UTC"),
)  # fmt: skip


def _stable(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.cxslack.invalid/{kind}/{name}"))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass
class Seeded:
    """A seeded alert: its definition, the Case it triggered on (minutes after the Case opened,
    minutes until it resolved), and its data as a function of time."""

    key: str
    case: int
    definition: dict[str, Any]
    resolve_after: float | None = None  # minutes from trigger to resolve

    @property
    def id(self) -> str:
        return str(self.definition["id"])


def _metric_alert(
    name: str, promql: str, threshold: float, window: str, kind: str = "METRIC_THRESHOLD"
) -> dict[str, Any]:
    return {
        "id": _stable("alerts", name),
        "alertVersionId": _stable("alert-versions", name),
        "status": "ALERT_DEF_STATUS_ALERTING",
        "alertDefProperties": {
            "name": name,
            "description": f"{name} (sandbox)",
            "enabled": True,
            "priority": "ALERT_DEF_PRIORITY_P1",
            "type": f"ALERT_DEF_TYPE_{kind}",
            "metricThreshold": {
                "metricFilter": {"promql": promql},
                "rules": [{"condition": {"threshold": threshold, "forOverPct": 100,
                                         "conditionType": "METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_UNSPECIFIED",
                                         "ofTheLast": {"metricTimeWindowSpecificValue": window}}}],
                "missingValues": {"replaceWithZero": False},
            },
        },
    }  # fmt: skip


def _seed() -> list[Seeded]:
    cpu = _metric_alert("CPU above 90% on checkout-api", 'avg(container_cpu_usage_percent{service="checkout-api"}) > 90',
                        90, "METRIC_TIME_WINDOW_VALUE_MINUTES_5")  # fmt: skip
    search = _metric_alert(
        "Search p95 latency above 1.5 s",
        "histogram_quantile(0.95, sum by (le) (rate(search_query_duration_seconds_bucket[5m])))",
        1.5,
        "METRIC_TIME_WINDOW_VALUE_MINUTES_1_OR_UNSPECIFIED",
    )
    errors_name = "Payment errors above 50 in 10 minutes"
    errors = {
        "id": _stable("alerts", errors_name),
        "alertVersionId": _stable("alert-versions", errors_name),
        "status": "ALERT_DEF_STATUS_ALERTING",
        "alertDefProperties": {
            "name": errors_name, "enabled": True, "priority": "ALERT_DEF_PRIORITY_P2",
            "type": "ALERT_DEF_TYPE_LOGS_THRESHOLD",
            "logsThreshold": {
                "logsFilter": {"simpleFilter": {"luceneQuery": "status:error", "labelFilters": {
                    "applicationName": [{"operation": "LOG_FILTER_OPERATION_TYPE_IS_OR_UNSPECIFIED", "value": "payments"}],
                    "severities": ["LOG_SEVERITY_ERROR", "LOG_SEVERITY_CRITICAL"]}}},
                "rules": [{"condition": {"threshold": 50, "conditionType": "LOGS_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_UNSPECIFIED",
                                         "timeWindow": {"logsTimeWindowSpecificValue": "LOGS_TIME_WINDOW_VALUE_MINUTES_10"}}}],
            },
        },
    }  # fmt: skip
    tls_name = "Slow checkout traces"
    tls = {"id": _stable("alerts", tls_name), "alertVersionId": _stable("alert-versions", tls_name),
           "alertDefProperties": {"name": tls_name, "type": "ALERT_DEF_TYPE_TRACING_THRESHOLD",
                                  "tracingThreshold": {"rules": []}}}  # fmt: skip
    return [
        Seeded("cpu", 1, cpu),
        Seeded("errors", 2, errors),
        Seeded("search", 4, search, resolve_after=20),
        Seeded("traces", 5, tls),
    ]


class AlertsApi:
    """Alert definitions, the seeded series, and what the API key may read."""

    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.lock = threading.Lock()
        sandbox.coralogix.on_reset.append(self.reset)
        self.reset()

    def reset(self) -> None:
        """Seeded alerts, each Case's indicator (its trigger: when the Case opened), the series."""
        cases = self.sandbox.coralogix
        with cases.lock, self.lock:
            self.alerts: dict[str, dict[str, Any]] = {}
            self.versions: dict[str, str] = {}  # version id → alert id
            self.metrics: dict[str, Callable[[float], float | None]] = {}  # PromQL → value at a time
            self.logs: dict[str, Callable[[float, float], float]] = {}  # Lucene → count in [t, t + width)
            self.permissions = set(DATA_PERMISSIONS)
            for seeded in _seed():
                self._add(seeded.definition)
            opened = {c.readable_id: c for c in cases.cases.values()}
            for seeded in _seed():
                case = opened.get(f"CASE-{seeded.case}")
                if case is None:
                    continue
                trigger = _epoch(case.create_time)
                resolve = trigger + seeded.resolve_after * 60 if seeded.resolve_after else None
                case.indicators = [_indicator(seeded.definition, trigger, resolve)]
                self._series(seeded, trigger, resolve)

    def _add(self, definition: dict[str, Any]) -> None:
        self.alerts[str(definition["id"])] = definition
        if definition.get("alertVersionId"):
            self.versions[str(definition["alertVersionId"])] = str(definition["id"])

    def _series(self, seeded: Seeded, trigger: float, resolve: float | None) -> None:
        """Deterministic data that crosses the threshold at the trigger (and back at the resolve)."""
        if seeded.key == "cpu":
            self.metrics['avg(container_cpu_usage_percent{service="checkout-api"})'] = lambda t: (
                63 + 3 * math.sin(2 * math.pi * t / 3000) + 36 * _sigmoid((t - trigger + 240) / 120)
            )
        elif seeded.key == "search":
            end = resolve or trigger
            self.metrics["histogram_quantile(0.95, sum by (le) (rate(search_query_duration_seconds_bucket[5m])))"] = (
                lambda t: 0.62 + 0.08 * math.sin(2 * math.pi * t / 1800)
                + 1.35 * (_sigmoid((t - trigger + 90) / 60) - _sigmoid((t - end + 90) / 60))
            )  # fmt: skip
        elif seeded.key == "errors":
            self.logs["status:error"] = lambda t, width: round(
                (4 + 2 * math.sin(t / 900) + 70 * _sigmoid((t - trigger + 300) / 240)) * width / 600
            )

    def register(self, router: Router) -> None:
        router.add("GET", ALERTS_PREFIX, self._alert)
        router.add("GET", QUERY_RANGE_PATH, self._query_range, exact=True)
        router.add("POST", QUERY_RANGE_PATH, self._query_range, exact=True)
        router.add("POST", DATAPRIME_PATH, self._dataprime, exact=True)
        admin: list[tuple[str, str, Callable[[Body], Body]]] = [
            ("GET", "alerts", lambda body: {"alerts": list(self.alerts.values())}),
            ("POST", "alerts", self.admin_alert),
            ("POST", "alerts/indicator", self.admin_indicator),
            ("POST", "metrics", self.admin_metrics),
            ("POST", "log-counts", self.admin_log_counts),
            ("GET", "data-permissions", lambda body: {"permissions": sorted(self.permissions)}),
            ("POST", "data-permissions", self.admin_permissions),
        ]
        for verb, name, action in admin:
            router.add(verb, CORALOGIX_ADMIN_PREFIX + name, json_route(verb, action))

    # -- the APIs ---------------------------------------------------------------------------
    def _admit(self, request: Request, method: str, permission: str) -> Response | None:
        with self.lock:  # the sandbox key's role here is what admin_permissions set
            grants = {CORALOGIX_API_KEY: set(self.permissions)}
        return admit(self.sandbox, request, method, permission, grants)

    def _alert(self, request: Request) -> Response:
        refused = self._admit(request, "coralogix.alerts.get", READ_ALERTS)
        if refused is not None:
            return refused
        ref = request.path.removeprefix(ALERTS_PREFIX)
        with self.lock:
            if ref.startswith("version-ids/"):
                version = ref.removeprefix("version-ids/")
                alert = self.alerts.get(self.versions.get(version, ""))
                if alert is None or alert.get("alertVersionId") != version:
                    return grpc_error(404, NOT_FOUND, f"alert version {version} not found")
            else:
                alert = self.alerts.get(ref)
                if alert is None:
                    return grpc_error(404, NOT_FOUND, f"alert {ref} not found")
            return Response.json(200, {"alertDef": json.loads(json.dumps(alert))})

    def _query_range(self, request: Request) -> Response:
        refused = self._admit(request, "coralogix.metrics.query_range", READ_METRICS)
        if refused is not None:
            return refused
        params = request.params()
        query = str(params.get("query") or "").strip()
        start, end = _prom_time(params.get("start")), _prom_time(params.get("end"))
        step = _prom_step(params.get("step"))
        if not query or start is None or end is None or step is None:
            return _bad_data("query, start, end and step are required (start/end: unix seconds or RFC 3339)")
        if end < start:
            return _bad_data("end timestamp must not be before start time")
        if step <= 0:
            return _bad_data("zero or negative query resolution step widths are not accepted")
        if (end - start) / step > MAX_POINTS:
            return _bad_data("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                             "query resolution (?step=XX)")  # fmt: skip
        with self.lock:
            series = self.metrics.get(query)
        values = []
        t = start
        while series is not None and t <= end + 1e-9:
            value = series(t)
            if value is not None:
                values.append([round(t, 3), repr(round(value, 6))])
            t += step
        result = [{"metric": _labels(query), "values": values}] if values else []
        return Response.json(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})

    def _dataprime(self, request: Request) -> Response:
        refused = self._admit(request, "coralogix.dataprime.query", READ_LOGS)
        if refused is not None:
            return refused
        body = request.json_object()
        query = body.get("query")
        metadata: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
        start, end = _iso(metadata.get("startDate")), _iso(metadata.get("endDate"))
        if not isinstance(query, str) or not query.strip() or start is None or end is None or end < start:
            return grpc_error(
                400,
                INVALID_ARGUMENT,
                "query is required; metadata.startDate/endDate must be RFC 3339, start before end",
            )
        lucene = re.search(r"\|\s*lucene\s+'((?:[^'\\]|\\.)*)'", query)
        bucket = re.search(r"groupby\s+roundTime\(\s*\$m\.timestamp\s*,\s*(\d+)([smhd])\s*\)\s+as\s+(\w+)\s+"
                           r"aggregate\s+count\(\)\s+as\s+(\w+)", query)  # fmt: skip
        rows: list[dict[str, Any]] = []
        with self.lock:
            counts = self.logs.get(lucene.group(1).replace("\\'", "'")) if lucene else None
        if counts is not None and bucket is not None:
            width = int(bucket.group(1)) * _UNIT_SECONDS[bucket.group(2)]
            t = math.floor(start / width) * width
            while t < end:
                n = counts(t, width)
                if n:
                    rows.append({bucket.group(3): int(t * 1_000_000_000), bucket.group(4): n})
                t += width
        lines: list[dict[str, Any]] = [{"queryId": {"queryId": str(uuid.uuid4())}}]
        if rows:
            results = [{"metadata": [], "labels": [], "userData": json.dumps(row)} for row in rows]
            lines.append({"result": {"results": results}})
        text = "".join(json.dumps(line) + "\n" for line in lines)
        return Response(200, text.encode(), content_type="application/x-ndjson")

    # -- admin ------------------------------------------------------------------------------
    def admin_alert(self, body: Body) -> Body:
        alert = body.get("alert")
        if (
            not isinstance(alert, dict)
            or not isinstance(alert.get("id"), str)
            or not isinstance(alert.get("alertDefProperties"), dict)
        ):
            raise AdminError(400, "invalid_arguments", "alert: an AlertDef with id and alertDefProperties")
        with self.lock:
            self._add(alert)
        return {"alert": alert}

    def admin_indicator(self, body: Body) -> Body:
        ref, alert_id = body.get("case"), body.get("alert_id")
        cases = self.sandbox.coralogix
        with cases.lock, self.lock:
            case = cases._find(ref) if isinstance(ref, str) else None
            alert = self.alerts.get(alert_id) if isinstance(alert_id, str) else None
            if case is None or alert is None:
                raise AdminError(404, "not_found", f"no Case {ref!r} or no alert {alert_id!r}")
            trigger = _iso(body.get("trigger_time")) or _epoch(case.create_time)
            resolve = _iso(body.get("resolve_time"))
            case.indicators = [*case.indicators, _indicator(alert, trigger, resolve)]
            return {"case": case.to_api()}

    def admin_metrics(self, body: Body) -> Body:
        query, points = body.get("query"), body.get("points")
        if not isinstance(query, str) or not isinstance(points, list):
            raise AdminError(400, "invalid_arguments", "query (PromQL) and points [[unix seconds, value], …]")
        table = {float(t): float(v) for t, v in points}
        with self.lock:
            self.metrics[query.strip()] = lambda t: next(
                (v for at, v in table.items() if abs(at - t) < 0.5), None
            )
        return {"query": query, "points": len(table)}

    def admin_log_counts(self, body: Body) -> Body:
        lucene, counts = body.get("lucene"), body.get("counts")
        if not isinstance(lucene, str) or not isinstance(counts, list):
            raise AdminError(400, "invalid_arguments", "lucene and counts [[unix seconds, count], …]")
        table = [(float(t), float(n)) for t, n in counts]
        with self.lock:
            self.logs[lucene] = lambda t, width: sum(n for at, n in table if t <= at < t + width)
        return {"lucene": lucene, "counts": len(table)}

    def admin_permissions(self, body: Body) -> Body:
        wanted = body.get("permissions")
        if not isinstance(wanted, list) or not set(wanted) <= set(DATA_PERMISSIONS):
            raise AdminError(
                400, "invalid_arguments", f"permissions: a list of {', '.join(DATA_PERMISSIONS)}"
            )
        with self.lock:
            self.permissions = set(wanted)
        return {"permissions": sorted(self.permissions)}


def _indicator(alert: dict[str, Any], trigger: float, resolve: float | None) -> dict[str, Any]:
    """cases.yaml AlertIndicator."""
    doc: dict[str, Any] = {
        "alertId": alert["id"],
        "latestAlertVersion": alert.get("alertVersionId") or alert["id"],
        "alertVersions": [alert.get("alertVersionId") or alert["id"]],
        "priority": "INDICATOR_PRIORITY_P1",
        "groupingType": "GROUPING_TYPE_NONE",
        "state": "INDICATOR_STATE_RESOLVED" if resolve else "INDICATOR_STATE_TRIGGERED",
        "triggerTime": rfc3339(trigger),
        "permutations": [],
    }
    if resolve:
        doc["resolveTime"] = rfc3339(resolve)
    return doc


def _labels(promql: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', promql)[:3])


def _bad_data(message: str) -> Response:
    return Response.json(400, {"status": "error", "errorType": "bad_data", "error": message})


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _iso(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def _prom_time(value: Any) -> float | None:
    """Prometheus's <rfc3339 | unix_timestamp>."""
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return _iso(value)


def _prom_step(value: Any) -> float | None:
    """Prometheus's <duration | float>: "15s", "5m", or seconds."""
    try:
        return float(str(value))
    except (TypeError, ValueError):
        match = re.fullmatch(r"(\d+)([smhd])", str(value or ""))
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None
