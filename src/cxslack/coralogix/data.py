"""Coralogix's query APIs, beside the management API on the same host and API key.

- Metrics: the Prometheus-compatible `GET /metrics/api/v1/query_range?query&start&end&step`
  (permission `metrics.data-api#high:ReadData`, the DataQuerying preset). The answer is
  Prometheus's: `{"status": "success", "data": {"resultType": "matrix", "result": [{"metric":
  {labels}, "values": [[unix seconds, "value"], …]}]}}`, or `{"status": "error", "errorType",
  "error"}`; values are strings, and may be "NaN", "+Inf" or "-Inf".
- Logs: DataPrime, `POST /api/v1/dataprime/query` with `{"query", "metadata": {"tier", "syntax",
  "startDate", "endDate", "defaultSource"}}` (permission `logs.data-api#high:ReadData`). The
  answer is NDJSON: a `{"queryId": …}` line, then `{"result": {"results": [{"metadata",
  "labels", "userData": "<the row as a JSON string>"}]}}` lines, and possibly `{"warning": …}` or
  `{"error": …}` lines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cxslack.coralogix.client import Call, CoralogixClient
from cxslack.errors import CxError

QUERY_RANGE_PATH = "/metrics/api/v1/query_range"
DATAPRIME_PATH = "/api/v1/dataprime/query"
METRICS_READ = "metrics.data-api#high:ReadData"
LOGS_READ = "logs.data-api#high:ReadData"


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]  # (unix seconds, value), in time order


def query_range(client: CoralogixClient, promql: str, start: float, end: float, step: float) -> list[Sample]:
    """Every series the PromQL expression gives over [start, end] at `step` seconds; samples that
    are not finite numbers (NaN, ±Inf) are left out."""
    call = Call(
        "query metrics (PromQL query_range)", METRICS_READ, "no Prometheus-compatible metrics API here"
    )
    params = {"query": promql, "start": _seconds(start), "end": _seconds(end), "step": _seconds(step)}
    response = client.data_api("GET", QUERY_RANGE_PATH, call, params=params)
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise CxError("coralogix_bad_response", "Coralogix's metrics API sent an answer cxslack cannot read")
    if doc.get("status") != "success":
        said = str(doc.get("error") or doc.get("errorType") or "no reason given")[:300]
        raise CxError("metrics_query_failed", f"Coralogix's metrics API refused the query: {said}")
    data = _obj(doc.get("data"))
    results = data.get("result") if data.get("resultType") == "matrix" else None
    samples = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict) or not isinstance(result.get("values"), list):
            continue
        labels = _obj(result.get("metric"))
        points = tuple(p for p in (_point(v) for v in result["values"]) if p is not None)
        if points:
            samples.append(Sample({str(k): str(v) for k, v in labels.items()}, points))
    return samples


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _point(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    try:
        at, number = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    return (at, number) if math.isfinite(at) and math.isfinite(number) else None


def dataprime_rows(client: CoralogixClient, query: str, start: float, end: float) -> list[dict[str, Any]]:
    """The rows (each result's userData) of a DataPrime query over logs in [start, end]."""
    call = Call("query logs (DataPrime)", LOGS_READ, "no DataPrime query API here")
    body = {
        "query": query,
        "metadata": {
            "tier": "TIER_FREQUENT_SEARCH",
            "syntax": "QUERY_SYNTAX_DATAPRIME",
            "startDate": rfc3339(start),
            "endDate": rfc3339(end),
            "defaultSource": "logs",
        },
    }
    response = client.data_api("POST", DATAPRIME_PATH, call, body=body)
    rows: list[dict[str, Any]] = []
    for line in response.text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            raise CxError(
                "coralogix_bad_response", "Coralogix's DataPrime API sent a line cxslack cannot read"
            ) from None
        if not isinstance(doc, dict):
            continue
        if "error" in doc:
            said = json.dumps(doc["error"])[:300]
            raise CxError("logs_query_failed", f"Coralogix's DataPrime API refused the query: {said}")
        result = doc.get("result")
        for item in result.get("results", []) if isinstance(result, dict) else []:
            row = _user_data(item)
            if row is not None:
                rows.append(row)
    return rows


def _user_data(item: Any) -> dict[str, Any] | None:
    raw = item.get("userData") if isinstance(item, dict) else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
