"""Connector shapes, comparison and the Notification Center / Integrations clients at the HTTP edge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from cxslack.connectors import EntityType
from cxslack.coralogix.client import CoralogixClient
from cxslack.coralogix.config import CoralogixSettings
from cxslack.coralogix.integrations import Integrations
from cxslack.coralogix.notification_center import NotificationCenter
from cxslack.errors import CxError, UsageError
from cxslack.remote.routing import targeting
from cxslack.remote.shape import compose, differences, normalised, split

API = "https://api.eu2.coralogix.com/mgmt/openapi/5"
NC = f"{API}/notifications/notification-center/v1"


def body(**extra: Any) -> dict[str, Any]:
    return {
        "id": "c1", "name": "C1", "type": "SLACK",
        "connectorConfig": {"fields": [
            {"fieldName": "integrationId", "value": "int-1"}, {"fieldName": "channel", "value": "alerts"},
            {"fieldName": "fallbackChannel", "value": "ops-fallback"}]},
        **extra,
    }  # fmt: skip


def test_split_then_compose_keeps_what_cxslack_does_not_model() -> None:
    original = body(
        type="CONNECTOR_TYPE_SLACK",
        description="d",
        diagnostics={"delivery": "DISABLED"},
        future={"x": None},
        configOverrides=[
            {"entityType": "ENTITY_TYPE_CASES", "future": 1,
             "fields": [{"fieldName": "channel", "template": "cases", "hint": "h"}]},
            {"entityType": "OLLY_SCHEDULED_TASKS", "fields": [{"fieldName": "channel", "template": "olly"}]},
        ],
        createTime="2026-01-01T00:00:00Z", updateTime="2026-01-02T00:00:00Z", teamId=7,
    )  # fmt: skip
    original["connectorConfig"]["fields"].append({"fieldName": "threadMode", "value": "on"})
    original["connectorConfig"]["fields"][1]["note"] = "kept"
    incoming = split(original, "here")
    assert incoming.overrides == {EntityType.CASES: "cases"}
    assert incoming.update_time == "2026-01-02T00:00:00Z"
    back = compose(incoming.to_connector("local-id"), "int-1")
    assert normalised(back) == normalised(original)
    assert {k for k in back} == {k for k in original} - {"createTime", "updateTime", "teamId"}
    assert back["type"] == "SLACK"  # sent bare


def test_comparison_ignores_server_fields_diagnostics_order_and_prefixes() -> None:
    a = body(configOverrides=[{"entityType": "ALERTS", "fields": [{"fieldName": "channel", "template": "a"}]},
                              {"entityType": "CASES", "fields": [{"fieldName": "channel", "template": "c"}]}])  # fmt: skip
    b = body(type="CONNECTOR_TYPE_SLACK", description="", updateTime="x", teamId=1, diagnostics={"delivery": "DISABLED"},
             configOverrides=[{"entityType": "ENTITY_TYPE_CASES", "fields": [{"fieldName": "channel", "template": "c"}]},
                              {"entityType": "ALERTS", "fields": [{"fieldName": "channel", "template": "a"}]}])  # fmt: skip
    b["connectorConfig"]["fields"].reverse()
    assert differences(normalised(a), normalised(b)) == []
    b["connectorConfig"]["fields"][0]["value"] = "other-fallback"
    assert differences(normalised(a), normalised(b)) == [
        ("connectorConfig.fallbackChannel", "ops-fallback", "other-fallback")
    ]


@pytest.mark.parametrize(
    "bad",
    [None, body(type="EMAIL"), body(name=""), body(connectorConfig={"fields": "x"}), body(configOverrides="x"),
     body(connectorConfig={"fields": [{"fieldName": "channel", "value": "a"}]})],
)  # fmt: skip
def test_split_refuses_what_is_not_a_slack_connector(bad: Any) -> None:
    with pytest.raises(UsageError):
        split(bad, "here")


def test_router_targets_cover_rules_and_fallbacks() -> None:
    routers = [{"id": "r", "name": "R", "rules": [{"name": "one", "targets": [{"connectorId": "a"}, {"connectorId": "b"}]},
                                                   {"targets": [{"connectorId": "a"}]}],
                "fallback": [{"connectorId": "b"}], "fallbackTargets": [{"entityType": "CASES", "target": {"connectorId": "c"}}]}]  # fmt: skip
    found = targeting(routers, {"a", "c"})
    assert [(t.rule, t.connector_id) for t in found] == [("one", "a"), ("#2", "a"), ("fallback", "c")]


# -- the clients at the httpx edge ------------------------------------------------------------------
@pytest.fixture
def client() -> CoralogixClient:
    return CoralogixClient(CoralogixSettings(API.removesuffix("/mgmt/openapi/5"), None, "k", None, "eu2"),
                           backoff=0.0, sleep=lambda s: None)  # fmt: skip


def test_slack_is_found_by_name_and_prefixed_statuses_are_read(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{API}/integrations/integrations/v1", json={"integrations": [
        {"integration": {"id": "sl-77", "name": "Slack"}}, {"integration": {"id": "x", "name": "Slack Access Logs"}}]})  # fmt: skip
    httpx_mock.add_response(url=f"{API}/integrations/integrations/v1/sl-77", json={"integrationDetail": {
        "local": {}, "default": {"registered": [
            {"id": "i1", "definitionVersion": "0.1.0", "empty": {},
             "integrationStatus": {"connectionStatus": "CONNECTION_STATUS_FAILING", "messages": ["revoked"]}},
            {"id": "i2", "definitionVersion": "0.0.9", "empty": {}}]}}})  # fmt: skip
    found = Integrations(client).slack_instances()
    assert [(r.id, r.status, r.messages) for r in found] == [
        ("i1", "FAILING", ("revoked",)),
        ("i2", "STATUS_UNKNOWN", ()),
    ]


def test_no_slack_definition_is_not_found(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/integrations/integrations/v1", json={})
    with pytest.raises(CxError) as caught:
        Integrations(client).slack_instances()
    assert caught.value.code == "slack_integration_not_available"


def test_test_results_and_the_requests_they_come_from(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{NC}/connectors:testConfig",
        json={"result": {"failure": {"message": "no", "statusCode": "403"}}},
    )
    httpx_mock.add_response(
        url=f"{NC}/connectors:test", json={"result": {"success": {"metadata": {"ts": "1"}}}}
    )
    nc = NotificationCenter(client)
    failed = nc.test_config([{"fieldName": "integrationId", "value": "i"}])
    assert (failed.ok, failed.message, failed.status_code) == (False, "no", 403)
    assert nc.test_connector("c 1").ok
    sent = [json.loads(r.content) for r in httpx_mock.get_requests()]
    assert sent[0] == {"type": "SLACK", "entityType": "TEST_NOTIFICATIONS",
                       "fields": [{"fieldName": "integrationId", "value": "i"}], "payloadType": "default"}  # fmt: skip
    assert sent[1] == {"connectorId": "c 1", "payloadType": "default"}


def test_a_test_is_never_retried_once_sent(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{NC}/connectors:test", status_code=500)
    with pytest.raises(CxError):
        NotificationCenter(client).test_connector("c1")
    assert len(httpx_mock.get_requests()) == 1


def test_list_filters_slack_and_ids_are_quoted_in_paths(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{NC}/connectors?connector_type=SLACK", json={})
    httpx_mock.add_response(url=f"{NC}/connectors/a%2Fb", json={"connector": {"id": "a/b"}})
    nc = NotificationCenter(client)
    assert nc.list_connectors() == []  # protobuf JSON leaves an empty list out
    assert nc.get_connector("a/b") == {"id": "a/b"}


@pytest.mark.parametrize(
    ("names", "found"),
    [(["AWS SQS", "Slack Integration"], "id-1"), (["Slack Alerts", "Slack Logs"], None), (["Teams"], None)],
)
def test_a_longer_name_is_taken_only_when_it_is_the_one_slack_definition(
    client: CoralogixClient, httpx_mock: HTTPXMock, names: list[str], found: str | None
) -> None:
    entries = [{"integration": {"id": f"id-{n}", "name": name}} for n, name in enumerate(names)]
    httpx_mock.add_response(url=f"{API}/integrations/integrations/v1", json={"integrations": entries})
    if found is None:
        with pytest.raises(CxError):
            Integrations(client).slack_definition_id()
    else:
        assert Integrations(client).slack_definition_id() == found
