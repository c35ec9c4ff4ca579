"""Coralogix API conformance: spec-shaped payloads (written from the published OpenAPI v5 excerpts in
../shared/reference/coralogix-openapi-v5/) through the client at the httpx edge.

Each payload is the schema's shape: once with every optional field and `oneOf` variant (plus fields
newer than the excerpt, which a client must ignore), once with only the required ones. The client
must read both, and nothing of Coralogix's JSON may reach a person as a dict, a repr or "None".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pytest_httpx import HTTPXMock

from cxslack.cases.model import CaseEvent, label_text, priority_label, status_label
from cxslack.cases.people import Assignee, People
from cxslack.coralogix.client import CoralogixClient
from cxslack.coralogix.config import CoralogixSettings
from cxslack.coralogix.integrations import Integrations
from cxslack.coralogix.notification_center import NotificationCenter
from cxslack.coralogix.team import find_active_member, search_members
from cxslack.slack.messages import case_preview, case_root_message, case_update_message

from .conftest import Cli

API = "https://api.eu2.coralogix.com"
MGMT = f"{API}/mgmt/openapi/5"
KEY = "cx-api-key-for-tests"
CASE_ID = "3f166e9f-3c88-4af2-b52e-138f339dab3e"
USER_ID = "3af152ee-9eaf-4803-87f1-23c5fb2fbaa0"
TEAM = 4711

# components.schemas.Case with every property the excerpt lists, each oneOf in one of its variants,
# int64 `duration` as a string (protobuf JSON), timestamps with and without fractional seconds, and
# two fields the excerpt does not know.
FULL_CASE: dict[str, Any] = {
    "id": CASE_ID,
    "readableId": "CASE-123",
    "title": "Checkout latency above 2s",
    "status": "CASE_STATUS_ACKNOWLEDGED",
    "priority": "CASE_PRIORITY_P2",
    "priorityDetails": {"system": "CASE_PRIORITY_P3", "override": "CASE_PRIORITY_P2"},
    "category": "CASE_CATEGORY_AVAILABILITY",
    "createTime": "2025-09-22T10:30:00.000Z",
    "updateTime": "2025-09-22T10:45:12.123456789Z",
    "acknowledgeTime": "2025-09-22T10:40:00Z",
    "duration": "900000",
    "aiSummary": "Latency rose after the 10:25 deploy.",
    "assignee": {"userId": USER_ID},
    "labels": [{"key": "service", "value": "checkout"}, {"key": "env", "value": "prod"}],
    "groupings": [{"key": "region", "value": "eu-west-1"}],
    "impactedEntities": [
        {"apmService": {"name": "checkout-api", "language": "go"}},
        {"apmDatabase": {"name": "orders-db"}},
    ],
    "caseIndicators": {
        "alertIndicators": [
            {
                "alertId": "f56645c5-9cd4-4b9f-961f-4f852d8835a0",
                "latestAlertVersion": "1eae3615-79e7-4b54-88e0-6a77def653bf",
                "alertVersions": ["1eae3615-79e7-4b54-88e0-6a77def653bf"],
                "priority": "INDICATOR_PRIORITY_P2",
                "groupingType": "GROUPING_TYPE_NONE",
                "state": "INDICATOR_STATE_TRIGGERED",
                "triggerTime": "2025-09-22T10:30:00.000Z",
                "permutations": [{"permutation": {"service": "checkout"}}],
            }
        ],
        "prometheusAlertIndicators": [],
    },
    "kpiBreaches": {"breachedKpis": []},
    "resolutionDetails": {
        "reason": "n/a",
        "resolveTime": "2025-09-22T11:15:00.000Z",
        "resolvedBy": {"cxUser": {}},
    },
    "futureField": {"nested": [1, 2, 3]},  # newer than the excerpt
    "severityScore": "42",
}
# only the required properties of components.schemas.Case
MINIMAL_CASE: dict[str, Any] = {
    "id": CASE_ID,
    "title": "Disk almost full",
    "status": "CASE_STATUS_ACTIVE",
    "priority": "CASE_PRIORITY_P5",
    "category": "CASE_CATEGORY_UNSPECIFIED",
    "createTime": "2025-09-22T10:30:00Z",
    "labels": [],
    "groupings": [],
    "impactedEntities": [],
}


def shown(value: Any) -> list[str]:
    """Every text a person sees in Block Kit JSON (the `text` strings, at any depth)."""
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        return found + [t for k, v in value.items() for t in shown(v)]
    if isinstance(value, list):
        return [t for v in value for t in shown(v)]
    return []


def assert_readable(*texts: str) -> None:
    """What a person reads carries none of the API's JSON, enum prefixes or Python's reprs."""
    for text in texts:
        for junk in ("{'", '{"', "userId", "CASE_STATUS_", "CASE_PRIORITY_", "None", "[{"):
            assert junk not in text, f"{junk!r} in {text!r}"


@pytest.fixture
def client() -> CoralogixClient:
    settings = CoralogixSettings(API, None, KEY, None, "eu2", team_id=TEAM)
    return CoralogixClient(settings, backoff=0, max_retries=1, sleep=lambda s: None)


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query, keep_blank_values=True)


# -- Cases: reading and rendering ----------------------------------------------------------
@pytest.mark.parametrize("case", [FULL_CASE, MINIMAL_CASE], ids=["all-fields", "required-only"])
def test_a_spec_case_renders_readably_everywhere(case: dict[str, Any]) -> None:
    assigned = Assignee(True, None) if case.get("assignee") else Assignee(False)
    text, blocks = case_root_message(case, None, assigned, buttons=True)
    seen = [text, *shown(blocks)]
    for event in CaseEvent:
        update_text, update_blocks = case_update_message(case, event, assigned)
        seen += [update_text, *shown(update_blocks)]
    seen += shown(case_preview(case, "https://team.app.eu2.coralogix.com/#/cases/x", assigned))
    assert_readable(*seen)
    assert status_label(case) in ("Acknowledged", "Active") and priority_label(case) in ("P2", "P5")


def test_labels_are_key_value_pairs() -> None:
    assert label_text(FULL_CASE) == "service:checkout, env:prod"
    assert label_text(MINIMAL_CASE) == "-"


@pytest.fixture
def cx_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_API_KEY", KEY)
    monkeypatch.setenv("CX_REGION", "eu2")


def test_show_reads_a_case_with_only_its_required_fields(
    cli: Cli, cx_env: None, httpx_mock: HTTPXMock
) -> None:
    """readableId and deepLinks.detail are optional (Case, CaseDeepLinks): neither is shown as "None",
    and a Case whose link Coralogix leaves out is still shown."""
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/{CASE_ID}", json={"case": MINIMAL_CASE})
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/{CASE_ID}/deep-links", json={"deepLinks": {}})
    run = cli.ok("cases", "show", CASE_ID)
    assert_readable(run.stdout)
    assert CASE_ID in run.stdout and "Disk almost full" in run.stdout and "P5" in run.stdout
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/{CASE_ID}", json={"case": MINIMAL_CASE})
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/{CASE_ID}/deep-links", json={"deepLinks": {}})
    doc = cli.ok("cases", "show", CASE_ID, "-o", "json").json()
    assert doc["link"] is None and doc["case"]["id"] == CASE_ID


def test_deep_link_without_detail_is_none(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    links = {"alertIndicators": {"f56645c5-9cd4-4b9f-961f-4f852d8835a0": {"logs": {"url": "https://x"}}},
             "impactedEntities": [{"entity": {"apmService": {"name": "a"}}, "url": "https://y"}]}  # fmt: skip
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/CASE-123/deep-links", json={"deepLinks": links})
    assert client.case_deep_link("CASE-123") is None
    httpx_mock.add_response(
        url=f"{MGMT}/cases/cases/v1/CASE-123/deep-links",
        json={"deepLinks": {**links, "detail": "https://z/c"}},
    )
    assert client.case_deep_link("case-123") == "https://z/c"


def test_list_cases_follows_the_nested_page_token(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    """ListCasesResponse: `pagination.nextPageToken` (cases.v1.PaginationResponse); the request's
    `pagination` is {pageSize, pageToken} (cases.v1.PaginationRequest)."""
    httpx_mock.add_response(
        url=f"{MGMT}/cases/cases/v1", json={"cases": [FULL_CASE], "pagination": {"nextPageToken": "MjAy=="}}
    )
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1", json={"pagination": {}})
    first = client.list_cases(page_size=1)
    assert first.next_page_token == "MjAy==" and first.cases[0]["id"] == CASE_ID
    last = client.list_cases(page_size=1, page_token=first.next_page_token)
    assert last.cases == [] and last.next_page_token is None
    bodies = [json.loads(r.content) for r in httpx_mock.get_requests()]
    assert bodies[0]["pagination"] == {"pageSize": 1}
    assert bodies[1]["pagination"] == {"pageSize": 1, "pageToken": "MjAy=="}


def test_timeline_events_of_every_actor_and_data_variant_are_read(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    actors = [{"apiKey": {"id": "k", "name": "n"}}, {"user": {"id": USER_ID}}, {"system": {}},
              {"slack": {"slackUserId": "U1", "displayName": "A", "userEmail": "a@x", "coralogixUserId": USER_ID}}]  # fmt: skip
    events = [
        {"eventId": f"e{i}", "actor": actor, "createTime": "2025-09-22T10:30:00Z",
         "eventTime": "2025-09-22T10:29:45.000Z", "eventData": data}
        for i, (actor, data) in enumerate(zip(actors, [
            {"comment": {"unsafeText": "hi", "slack": {"channelId": "C1", "threadId": "1.2"}}},
            {"statusChanged": {"oldStatus": "CASE_STATUS_ACTIVE", "newStatus": "CASE_STATUS_ACKNOWLEDGED"}},
            {"assigned": {"assigneeUserId": USER_ID}},
            {"comment": {}},  # every CommentCaseEvent field is optional
        ], strict=True))
    ]  # fmt: skip
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/CASE-123/events", json={"events": events})
    assert [e["eventId"] for e in client.list_events("CASE-123")] == ["e0", "e1", "e2", "e3"]
    httpx_mock.add_response(url=f"{MGMT}/cases/cases/v1/CASE-123/events", json={})
    assert client.list_events("CASE-123") == []


def test_actions_send_the_spec_bodies(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=f"{MGMT}/cases/acknowledged/v1", json={"cases": [FULL_CASE]})
    httpx_mock.add_response(method="POST", url=f"{MGMT}/cases/assigned/v1/CASE-123", json={"case": FULL_CASE})
    httpx_mock.add_response(method="PUT", url=f"{MGMT}/cases/resolved/v1/CASE-123", json={"case": FULL_CASE})
    httpx_mock.add_response(method="POST", url=f"{MGMT}/cases/closed/v1/CASE-123", json={"case": FULL_CASE})
    client.acknowledge_case("CASE-123", USER_ID)
    client.assign_case("CASE-123", USER_ID)
    client.resolve_case("CASE-123", "fixed")
    client.close_case("CASE-123")
    ack, assign, resolve, close = httpx_mock.get_requests()
    assert json.loads(ack.content) == {"ids": ["CASE-123"], "actor": {"userId": USER_ID}}
    assert json.loads(assign.content) == {"assignee": {"userId": USER_ID}}
    assert json.loads(resolve.content) == {"reason": "fixed"}
    assert not close.content
    for request in (ack, assign, resolve, close):
        assert request.headers["Authorization"] == f"Bearer {KEY}"


# -- team members --------------------------------------------------------------------------
def _user(n: int, status: str = "USER_STATUS_ACTIVE") -> dict[str, Any]:
    return {"userId": f"3af152ee-9eaf-4803-87f1-23c5fb2fb{n:03d}", "username": f"u{n}@example.com",
            "firstName": "U", "lastName": str(n), "status": status, "userAccountId": str(1000 + n)}  # fmt: skip


@pytest.mark.parametrize("token", [2, "2"], ids=["int64-number", "int64-string"])
def test_team_search_pages_on_while_there_is_a_next_page_token(
    client: CoralogixClient, httpx_mock: HTTPXMock, token: Any
) -> None:
    """SearchUsersResponse.nextPageToken (int64) goes back as `page_token`: a page that a server-side
    filter left empty is not the end while a token says there is more."""
    search = f"{MGMT}/aaa/teams/v2/{TEAM}/search"
    httpx_mock.add_response(json={"users": [_user(1)], "nextPageToken": token, "totalCount": "3"})
    httpx_mock.add_response(json={"users": [], "nextPageToken": 4})
    httpx_mock.add_response(json={"users": [_user(5)]})
    found = list(search_members(client, TEAM, status=None))
    assert [m.username for m in found] == ["u1@example.com", "u5@example.com"]
    calls = [query(r) for r in httpx_mock.get_requests()]
    assert all(str(r.url).startswith(search) for r in httpx_mock.get_requests())
    assert (
        "page_token" not in calls[0] and calls[1]["page_token"] == ["2"] and calls[2]["page_token"] == ["4"]
    )


def test_team_search_sends_username_and_status_as_query_parameters(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json={"users": [_user(7), {**_user(8), "username": "U7@Example.com"}]})
    member = find_active_member(client, TEAM, "u7@example.com")
    assert member is not None and member.user_id == _user(7)["userId"]
    sent = query(httpx_mock.get_requests()[0])
    assert sent["username"] == ["u7@example.com"] and sent["status"] == ["USER_STATUS_ACTIVE"]


# -- Notification Center -------------------------------------------------------------------
SLACK_CONNECTOR: dict[str, Any] = {
    "id": "team-payments-slack",
    "name": "Payments on-call",
    "description": "",
    "type": "SLACK",
    "teamId": "4711",  # int64: a string in protobuf JSON, a number in the excerpt
    "createTime": "2025-09-22T10:30:00Z",
    "updateTime": "2025-09-22T10:45:12.123456Z",
    "diagnostics": {"delivery": "ERRORS_ONLY"},
    "connectorConfig": {
        "fields": [
            {"fieldName": "integrationId", "value": "60d87305"},
            {"fieldName": "channel", "value": "payments-alerts"},
            {"fieldName": "fallbackChannel", "value": "ops-fallback"},
        ]
    },  # fmt: skip
    "configOverrides": [{"entityType": "CASES", "fields": [{"fieldName": "channel", "template": "cases"}]}],
}


def test_list_connectors_filters_by_type_in_the_query(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        json={"connectors": [SLACK_CONNECTOR, {**SLACK_CONNECTOR, "teamId": 4711, "id": "b"}]}
    )
    found = NotificationCenter(client).list_connectors()
    assert [c["id"] for c in found] == ["team-payments-slack", "b"]
    request = httpx_mock.get_requests()[0]
    assert (
        request.method == "GET"
        and request.url.path == "/mgmt/openapi/5/notifications/notification-center/v1/connectors"
    )
    assert query(request) == {"connector_type": ["SLACK"]}
    httpx_mock.add_response(json={})  # protobuf JSON leaves an empty list out
    assert NotificationCenter(client).list_connectors() == []


@pytest.mark.parametrize(
    ("result", "ok", "status"),
    [
        ({"success": {}}, True, None),
        ({"success": {"metadata": {"ts": "1.2"}}}, True, None),
        ({"failure": {"message": "channel_not_found", "statusCode": "404"}}, False, 404),
        ({"failure": {"message": "x", "statusCode": 500}}, False, 500),
        ({"failure": {}}, False, None),
    ],
)
def test_connector_test_results_in_both_variants(
    client: CoralogixClient, httpx_mock: HTTPXMock, result: dict[str, Any], ok: bool, status: int | None
) -> None:
    httpx_mock.add_response(json={"result": result})
    outcome = NotificationCenter(client).test_connector("team-payments-slack")
    assert outcome.ok is ok and outcome.status_code == status
    assert json.loads(httpx_mock.get_requests()[0].content) == {
        "connectorId": "team-payments-slack",
        "payloadType": "default",
    }


def test_test_config_sends_fields_at_the_top_level(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"result": {"success": {}}})
    fields = SLACK_CONNECTOR["connectorConfig"]["fields"]
    NotificationCenter(client).test_config(fields)
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body == {
        "type": "SLACK",
        "entityType": "TEST_NOTIFICATIONS",
        "fields": fields,
        "payloadType": "default",
    }


def test_routers_are_read(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    router = {"id": "r1", "name": "Main", "entityType": "ALERTS",
              "rules": [{"name": "p1", "condition": "alertDef.priority == \"P1\"", "entityType": "ALERTS",
                         "targets": [{"connectorId": "team-payments-slack", "presetId": "p"}]}],
              "fallback": [{"connectorId": "b"}], "fallbackTargets": [], "entityLabels": {"team": "db"}}  # fmt: skip
    httpx_mock.add_response(json={"routers": [router]})
    assert NotificationCenter(client).list_routers() == [router]
    httpx_mock.add_response(json={})
    assert NotificationCenter(client).list_routers() == []


# -- Integrations --------------------------------------------------------------------------
def test_deployed_instances_of_every_registered_variant(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    definitions = {"integrations": [
        {"integration": {"id": "aws", "name": "AWS"}, "amountIntegrations": "0"},
        {"integration": {"id": "slack-xyz", "name": "Slack", "versions": ["0.1.0"]}, "amountIntegrations": "2",
         "isNew": False, "upgradeAvailable": True},
    ]}  # fmt: skip
    registered = [
        {"id": "i1", "definitionVersion": "0.1.0", "empty": {}, "isTesting": False,
         "lastUpdated": "2025-09-22T10:30:00.5Z",
         "integrationStatus": {"connectionStatus": "FAILING", "messages": ["token revoked"], "details": {"a": "b"}}},
        {"id": "i2", "definitionVersion": "0.0.9", "arm": {}},  # no status: STATUS_UNKNOWN
    ]  # fmt: skip
    httpx_mock.add_response(url=f"{MGMT}/integrations/integrations/v1", json=definitions)
    httpx_mock.add_response(url=f"{MGMT}/integrations/integrations/v1/slack-xyz",
                            json={"integrationDetail": {"local": {"changes": []}, "default": {"registered": registered}}})  # fmt: skip
    one, two = Integrations(client).slack_instances()
    assert (one.id, one.status, one.messages, one.version) == ("i1", "FAILING", ("token revoked",), "0.1.0")
    assert (two.id, two.status, two.version) == ("i2", "STATUS_UNKNOWN", "0.0.9")


def test_people_name_the_assignee_from_the_team(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        json={"users": [{**_user(1), "userId": USER_ID, "firstName": "Ada", "lastName": "Lovelace"}]}
    )
    assert People(client).assignee(FULL_CASE) == Assignee(True, "Ada Lovelace")


def test_a_coralogix_name_cannot_mention_a_channel_but_a_slack_mention_stays() -> None:
    """rbac.v2.User first/last names are free text from Coralogix: escaped like titles and labels."""
    named = Assignee(True, "<!channel> Eve")
    text, blocks = case_root_message(FULL_CASE, None, named)
    update_text, update = case_update_message(FULL_CASE, CaseEvent.ASSIGNEE_CHANGED, named)
    preview = case_preview(FULL_CASE, "https://x/c", named)
    for seen in (*shown(blocks), update_text, *shown(update), *shown(preview)):
        assert "<!channel>" not in seen
    assert any("&lt;!channel&gt; Eve" in t for t in shown(blocks))
    mentioned = Assignee(True, "<@U012AB3CD>")
    assert any("<@U012AB3CD>" in t for t in shown(case_root_message(FULL_CASE, None, mentioned)[1]))
    assert any(
        "<@U012AB3CD>" in t
        for t in shown(case_update_message(FULL_CASE, CaseEvent.ASSIGNEE_CHANGED, mentioned)[1])
    )


@pytest.mark.parametrize(
    ("status", "priority"),
    [
        ("CASE_STATUS_ACTIVE", "CASE_PRIORITY_P1"),
        ("ACTIVE", "P1"),
        ("CASE_STATUS_PENDING_ACTIVATION", "CASE_PRIORITY_P4"),
    ],
)
def test_enums_read_the_same_bare_or_prefixed(status: str, priority: str) -> None:
    from cxslack.cases.actions import offered

    case = {**MINIMAL_CASE, "status": status, "priority": priority}
    bare = {
        **MINIMAL_CASE,
        "status": status.removeprefix("CASE_STATUS_"),
        "priority": priority.removeprefix("CASE_PRIORITY_"),
    }
    assert status_label(case) == status_label(bare) and priority_label(case) == priority_label(bare)
    assert offered(case) == offered(bare)
    assert priority_label(case) in {f"P{n}" for n in range(1, 6)}


def test_protobuf_json_leaves_default_values_out() -> None:
    """proto3 JSON omits zero values: a Case may arrive without status, priority, category or its
    empty lists, even where the excerpt says required."""
    bare = {"id": CASE_ID, "title": "t", "createTime": "2025-09-22T10:30:00Z"}
    text, blocks = case_root_message(bare, None, Assignee(False), buttons=True)
    assert_readable(text, *shown(blocks))
    assert priority_label(bare) == "-" and label_text(bare) == "-"


# -- alert definitions (alerts-integrations.yaml, alerts v3) --------------------------------
def _alert(props: dict[str, Any]) -> dict[str, Any]:
    return {"alertDef": {"id": "f56645c5-9cd4-4b9f-961f-4f852d8835a0", "alertVersionId": "v1",
                         "alertDefProperties": {"name": "Errors", **props}}}  # fmt: skip


def test_a_threshold_of_zero_that_protobuf_json_left_out_is_zero() -> None:
    """LogsThresholdCondition / MetricThresholdCondition.threshold is a double: proto3 JSON omits 0,
    so "more than 0 errors" arrives without `threshold` and is still drawn at 0."""
    from cxslack.charts.model import alert_query

    logs = _alert({"type": "ALERT_DEF_TYPE_LOGS_THRESHOLD", "logsThreshold": {
        "logsFilter": {"simpleFilter": {"luceneQuery": "level:error"}},
        "rules": [{"condition": {"timeWindow": {"logsTimeWindowSpecificValue": "LOGS_TIME_WINDOW_VALUE_MINUTES_10"}}}]}})  # fmt: skip
    assert alert_query(logs["alertDef"]).threshold == 0.0
    metric = _alert({"type": "ALERT_DEF_TYPE_METRIC_THRESHOLD", "metricThreshold": {
        "metricFilter": {"promql": "sum(rate(errors_total[5m]))"}, "rules": [{"condition": {}}]}})  # fmt: skip
    assert alert_query(metric["alertDef"]).threshold == 0.0
    compared = _alert(
        {"metricThreshold": {"metricFilter": {"promql": "cpu > 90"}, "rules": [{"condition": {}}]}}
    )
    query = alert_query(compared["alertDef"])
    assert (query.threshold, query.operator) == (90.0, ">")  # the PromQL's own comparison
    given = _alert({"metricThreshold": {"metricFilter": {"promql": "cpu"}, "rules": [{"condition": {
        "threshold": 75.5, "conditionType": "METRIC_THRESHOLD_CONDITION_TYPE_LESS_THAN"}}]}})  # fmt: skip
    query = alert_query(given["alertDef"])
    assert (query.threshold, query.operator) == (75.5, "<")
