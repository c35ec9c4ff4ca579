"""The sandbox's Notification Center and Integrations: each rule it enforces, over real sockets.

Every rule here is in the table at the top of sandbox/notification_center.py, with its source.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cxslack.coralogix.integrations import Integrations
from cxslack.coralogix.notification_center import NotificationCenter
from cxslack.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE, CxError
from cxslack.sandbox import SlackSandbox
from cxslack.sandbox.coralogix import CORALOGIX_API_KEY, CORALOGIX_READONLY_API_KEY
from cxslack.sandbox.notification_center import CORALOGIX_NC_READONLY_KEY, NC_PREFIX

from .conftest import coralogix_client

HTTP = httpx.Client(timeout=10)


@pytest.fixture
def nc(sandbox: SlackSandbox) -> Iterator[NotificationCenter]:
    HTTP.post(
        f"{sandbox.url}/_sandbox/coralogix/integrations", json={"id": "int-1", "version": "0.1.0"}
    ).raise_for_status()
    with coralogix_client(sandbox) as client:
        yield NotificationCenter(client)


def slack(ident: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "name": "Payments on-call", "type": "SLACK", "connectorConfig": {"fields": [
        {"fieldName": "integrationId", "value": "int-1"}, {"fieldName": "channel", "value": "alerts"},
        {"fieldName": "fallbackChannel", "value": "ops-fallback"}]}, **extra}  # fmt: skip


def refused(call: Any) -> CxError:
    with pytest.raises(CxError) as caught:
        call()
    return caught.value


def raw(
    sandbox: SlackSandbox, verb: str, path: str, body: Any = None, key: str = CORALOGIX_API_KEY
) -> httpx.Response:
    return HTTP.request(
        verb, f"{sandbox.url}{NC_PREFIX}{path}", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def test_enums_are_accepted_bare_and_prefixed_and_answered_bare(nc: NotificationCenter) -> None:
    created = nc.create_connector(slack(type="CONNECTOR_TYPE_SLACK", configOverrides=[
        {"entityType": "ENTITY_TYPE_CASES", "fields": [{"fieldName": "channel", "template": "cases"}]},
        {"entityType": "OLLY_SCHEDULED_TASKS", "fields": [{"fieldName": "channel", "template": "olly"}]}]))  # fmt: skip
    assert created["type"] == "SLACK"
    assert [o["entityType"] for o in created["configOverrides"]] == ["CASES", "OLLY_SCHEDULED_TASKS"]
    assert [c["id"] for c in nc.list_connectors("CONNECTOR_TYPE_SLACK")] == ["c1"]
    error = refused(lambda: nc.create_connector(slack("c2", type="TEAMS")))
    assert error.exit_code == EXIT_USAGE and "TEAMS" in error.message
    assert refused(lambda: nc.list_connectors("SLACKISH")).exit_code == EXIT_USAGE


def test_put_replaces_the_whole_connector_and_moves_update_time(nc: NotificationCenter) -> None:
    created = nc.create_connector(slack(description="first", configOverrides=[
        {"entityType": "ALERTS", "fields": [{"fieldName": "channel", "template": "x"}]}], labels={"a": 1}))  # fmt: skip
    assert created["createTime"] == created["updateTime"] and isinstance(created["teamId"], int)
    replaced = nc.replace_connector({**slack(), "updateTime": "1999-01-01T00:00:00Z", "teamId": 1})
    assert "description" not in replaced and "configOverrides" not in replaced and "labels" not in replaced
    assert replaced["createTime"] == created["createTime"] and replaced["teamId"] == created["teamId"]
    assert replaced["updateTime"] > created["updateTime"]  # RFC 3339, ms: later sorts later
    again = nc.replace_connector(slack())
    assert again["updateTime"] > replaced["updateTime"]  # every write moves it, even an identical one
    assert nc.get_connector("c1") == again


def test_unknown_connectors_are_404_and_existing_ids_409(nc: NotificationCenter) -> None:
    for call in (lambda: nc.get_connector("nope"), lambda: nc.replace_connector(slack("nope")),
                 lambda: nc.delete_connector("nope"), lambda: nc.test_connector("nope")):  # fmt: skip
        assert refused(call).exit_code == EXIT_NOT_FOUND
    nc.create_connector(slack())
    assert refused(lambda: nc.create_connector(slack())).code == "coralogix_conflict"
    nc.delete_connector("c1")
    assert nc.list_connectors() == []


def test_a_connector_without_an_id_gets_one(nc: NotificationCenter) -> None:
    body = slack()
    del body["id"]
    created = nc.create_connector(body)
    assert len(created["id"]) == 36


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"id": "-starts-with-dash"}, "connector.id"),
        ({"id": "x" * 129}, "connector.id"),
        ({"name": ""}, "connector.name"),
        ({"name": "n" * 201}, "connector.name"),
        ({"description": "d" * 5001}, "description"),
        ({"connectorConfig": {"fields": [{"fieldName": "integrationId", "value": "int-1"},
                                         {"fieldName": "channel", "value": "a"}]}}, "fallbackChannel"),
        ({"connectorConfig": {"fields": [{"fieldName": "integrationId", "value": "not-deployed"},
                                         {"fieldName": "channel", "value": "a"},
                                         {"fieldName": "fallbackChannel", "value": "b"}]}}, "no deployed Slack integration"),
        ({"configOverrides": [{"entityType": "CASES", "fields": [{"fieldName": "fallbackChannel", "template": "x"}]}]},
         "only override channel"),
        ({"configOverrides": [{"entityType": "INCIDENTS", "fields": []}]}, "entityType"),
        ({"diagnostics": {"delivery": "SOMETIMES"}}, "diagnostics.delivery"),
    ],
)  # fmt: skip
def test_invalid_connectors_are_400_naming_the_rule(
    nc: NotificationCenter, change: dict[str, Any], said: str
) -> None:
    error = refused(lambda: nc.create_connector({**slack(), **change}))
    assert error.exit_code == EXIT_USAGE and said in error.message


def test_connector_tests_deliver_to_the_channel_then_the_fallback(
    nc: NotificationCenter, sandbox: SlackSandbox
) -> None:
    nc.create_connector(slack())
    ok = nc.test_connector("c1")
    assert ok.ok and ok.metadata["channel"] == "alerts" and ok.metadata["fallbackUsed"] == "false"
    messages = HTTP.get(f"{sandbox.url}/_sandbox/messages", params={"channel": "alerts"}).json()["messages"]
    assert "Test notification from Coralogix Notification Center" in messages[-1]["text"]
    HTTP.post(f"{sandbox.url}/_sandbox/archive", json={"channel": "alerts"}).raise_for_status()
    fallback = nc.test_connector("c1")
    assert (
        fallback.ok
        and fallback.metadata["channel"] == "ops-fallback"
        and fallback.metadata["fallbackUsed"] == "true"
    )
    fields = [{"fieldName": "integrationId", "value": "int-1"}, {"fieldName": "channel", "value": "old-alerts"},
              {"fieldName": "fallbackChannel", "value": "secure-ops"}]  # fmt: skip
    failed = nc.test_config(fields)  # archived, and private without the app
    assert not failed.ok and "is_archived" in failed.message and "not_in_channel" in failed.message
    assert failed.status_code == 404


def test_a_failing_integration_fails_its_tests_with_coralogix_messages(
    nc: NotificationCenter, sandbox: SlackSandbox
) -> None:
    nc.create_connector(slack())
    HTTP.post(f"{sandbox.url}/_sandbox/coralogix/integrations/status",
              json={"id": "int-1", "status": "FAILING", "messages": ["token_revoked"]}).raise_for_status()  # fmt: skip
    result = nc.test_connector("c1")
    assert not result.ok and "FAILING" in result.message and "token_revoked" in result.message


def test_integrations_are_listed_by_definition_and_deployed_instance(sandbox: SlackSandbox) -> None:
    admin = f"{sandbox.url}/_sandbox/coralogix/integrations"
    HTTP.post(admin, json={"id": "old", "version": "0.0.9"}).raise_for_status()
    HTTP.post(admin, json={"id": "new", "version": "0.1.0", "status": "PENDING"}).raise_for_status()
    with coralogix_client(sandbox) as client:
        instances = {r.id: r for r in Integrations(client).slack_instances()}
        assert instances["old"].version == "0.0.9" and instances["old"].status == "ACTIVE"
        assert instances["new"].status == "PENDING" and instances["new"].last_updated
        listed = client.management("GET", "/integrations/integrations/v1", _call())["integrations"]
        assert "Slack" in [e["integration"]["name"] for e in listed] and len(listed) > 1
        assert (
            refused(lambda: client.management("GET", "/integrations/integrations/v1/nope", _call())).exit_code
            == 3
        )


def _call() -> Any:
    from cxslack.coralogix.client import Call

    return Call("read integrations", "integrations:ReadConfig", "no such integration")


def test_removing_an_integration_removes_its_connectors(
    nc: NotificationCenter, sandbox: SlackSandbox
) -> None:
    nc.create_connector(slack())
    HTTP.post(f"{sandbox.url}/_sandbox/coralogix/nc/routers",
              json={"router": {"id": "r1", "name": "Main", "rules": [{"name": "all", "targets": [{"connectorId": "c1"}]}]}}
              ).raise_for_status()  # fmt: skip
    answer = HTTP.post(f"{sandbox.url}/_sandbox/coralogix/integrations/remove", json={"id": "int-1"}).json()
    assert answer["removed_connectors"] == ["c1"]
    assert nc.list_connectors() == []
    assert nc.list_routers()[0]["rules"][0]["targets"] == [{"connectorId": "c1"}]  # the rule dangles


def test_keys_need_the_notification_center_permissions(sandbox: SlackSandbox) -> None:
    HTTP.post(f"{sandbox.url}/_sandbox/coralogix/integrations", json={"id": "int-1"}).raise_for_status()
    with coralogix_client(sandbox, CORALOGIX_NC_READONLY_KEY) as client:
        reader = NotificationCenter(client)
        assert reader.list_connectors() == [] and reader.list_routers() == []
        error = refused(lambda: reader.create_connector(slack()))
        assert error.exit_code == EXIT_AUTH and "notification-center-connectors:UpdateConfig" in error.message
    with coralogix_client(sandbox, CORALOGIX_READONLY_API_KEY) as client:
        assert (
            "notification-center-connectors:ReadConfig"
            in refused(NotificationCenter(client).list_connectors).message
        )
        assert refused(Integrations(client).slack_instances).exit_code == EXIT_AUTH
    assert raw(sandbox, "GET", "/connectors", key="wrong").status_code == 401
    assert raw(sandbox, "GET", "/presets").status_code == 404


def test_latency_and_faults_reach_these_calls(sandbox: SlackSandbox, nc: NotificationCenter) -> None:
    HTTP.post(f"{sandbox.url}/_sandbox/faults",
              json={"kind": "status", "method": "coralogix.nc.connectors.list", "status": 503, "count": 1}).raise_for_status()  # fmt: skip
    assert nc.list_connectors() == []  # a 503 is retried
    calls = HTTP.get(f"{sandbox.url}/_sandbox/calls").json()["methods"]
    assert calls["coralogix.nc.connectors.list"] == 2


def test_list_filters_are_the_published_query_parameters(
    sandbox: SlackSandbox, nc: NotificationCenter
) -> None:
    """notification-center.yaml: ListConnectors `supported_by_entity_type`, ListGlobalRouters `entity_type`."""
    nc.create_connector(slack())
    for router in ({"id": "r-alerts", "name": "A", "entityType": "ALERTS", "rules": []},
                   {"id": "r-cases", "name": "C", "rules": [{"name": "x", "entityType": "ENTITY_TYPE_CASES",
                                                             "targets": [{"connectorId": "c1"}]}]}):  # fmt: skip
        HTTP.post(f"{sandbox.url}/_sandbox/coralogix/nc/routers", json={"router": router}).raise_for_status()

    def routers(query: str) -> list[str]:
        answer = raw(sandbox, "GET", f"/routers{query}")
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["routers"]]

    assert routers("") == ["r-alerts", "r-cases"]
    assert routers("?entity_type=CASES") == routers("?entity_type=ENTITY_TYPE_CASES") == ["r-cases"]
    assert routers("?entity_type=ALERTS") == ["r-alerts"]
    answer = raw(sandbox, "GET", "/connectors?connector_type=SLACK&supported_by_entity_type=CASES")
    assert [c["id"] for c in answer.json()["connectors"]] == ["c1"]
    for bad in ("/routers?entity_type=INCIDENTS", "/connectors?supported_by_entity_type=INCIDENTS"):
        answer = raw(sandbox, "GET", bad)
        assert (answer.status_code, answer.json()["code"]) == (400, 3), bad


def test_one_deployed_integration_by_id(sandbox: SlackSandbox) -> None:
    """alerts-integrations.yaml GetDeployedIntegration: {"integration": DeployedIntegrationInformation}."""
    HTTP.post(f"{sandbox.url}/_sandbox/coralogix/integrations",
              json={"id": "new", "version": "0.1.0", "status": "FAILING", "messages": ["token revoked"]}).raise_for_status()  # fmt: skip
    with coralogix_client(sandbox) as client:
        info = client.management("GET", "/integrations/integrations/v1/deployed/new", _call())["integration"]
        assert info["id"] == "new" and info["definitionVersion"] == "0.1.0" and info["definitionKey"]
        assert info["integrationStatus"]["connectionStatus"] == "FAILING"
        assert info["integrationStatus"]["messages"] == ["token revoked"]
        assert set(info) <= {"id", "definitionKey", "definitionVersion", "integrationStatus", "parameters"}
        gone = refused(
            lambda: client.management("GET", "/integrations/integrations/v1/deployed/nope", _call())
        )
        assert gone.exit_code == EXIT_NOT_FOUND


def test_batch_get_takes_repeated_connector_ids(sandbox: SlackSandbox, nc: NotificationCenter) -> None:
    """notification-center.yaml BatchGetConnectors: `connector_ids` is an array in the query (repeated)."""
    nc.create_connector(slack("c1"))
    nc.create_connector(slack("c2", name="Second"))
    answer = HTTP.get(f"{sandbox.url}{NC_PREFIX}/connectors/all/list",
                      params=[("connector_ids", "c2"), ("connector_ids", "nope"), ("connector_ids", "c1")],
                      headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert sorted(doc["connectors"]) == ["c1", "c2"] and doc["connectors"]["c2"]["name"] == "Second"
    assert doc["notFoundIds"] == ["nope"]
