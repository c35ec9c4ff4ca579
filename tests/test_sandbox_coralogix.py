"""The sandbox's Coralogix side over real loopback sockets, driven by the real CoralogixClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cxslack.coralogix.client import CoralogixClient
from cxslack.errors import EXIT_AUTH, EXIT_NOT_FOUND, CxError
from cxslack.sandbox import SlackSandbox
from cxslack.sandbox.coralogix import (
    CORALOGIX_API_KEY,
    CORALOGIX_READONLY_API_KEY,
    CORALOGIX_SEND_KEY,
    MAX_INGEST_BYTES,
    RULES,
    case_uuid,
    member_id,
)

from .conftest import coralogix_client

HTTP = httpx.Client(timeout=10)


@pytest.fixture
def client(sandbox: SlackSandbox) -> Iterator[CoralogixClient]:
    with coralogix_client(sandbox) as client:
        yield client


def admin_get(sandbox: SlackSandbox, path: str, **params: str) -> dict[str, Any]:
    response = HTTP.get(f"{sandbox.url}/_sandbox/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def admin_post(sandbox: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sandbox.url}/_sandbox/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def failure(call: Any) -> CxError:
    with pytest.raises(CxError) as info:
        call()
    return info.value


# -- Cases ----------------------------------------------------------------------------------
def test_a_case_by_readable_id_or_uuid(client: CoralogixClient) -> None:
    case = client.get_case("CASE-1")
    assert case["id"] == case_uuid(1) and case["readableId"] == "CASE-1"
    assert case["status"] == "CASE_STATUS_ACTIVE" and case["priority"] == "CASE_PRIORITY_P1"
    # cases.v1.UserDetails and v1.KeyValue, as the published OpenAPI v5 has them
    assert case["assignee"] == {"userId": member_id("alice@example.com")}
    assert case["labels"] == [{"key": "env", "value": "prod"}, {"key": "service", "value": "checkout"}]
    assert {"category", "groupings", "impactedEntities", "priorityDetails"} <= set(case)
    assert case["createTime"].endswith("Z") and case["updateTime"] == case["createTime"]
    assert client.get_case(case_uuid(1)) == case


def test_a_case_id_outside_the_published_pattern_is_400(sandbox: SlackSandbox) -> None:
    """cases.yaml: every Case id is ^(uuid|[A-Z]+-[0-9]+)$ (lower-case hex) of at most 64 characters."""
    key = {"Authorization": f"Bearer {CORALOGIX_API_KEY}"}
    for ref in ("case-1", case_uuid(1).upper(), "A" * 63 + "-1"):
        answer = HTTP.get(f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1/{ref}", headers=key)
        assert (answer.status_code, answer.json()["code"]) == (400, 3), ref
    assert (
        HTTP.get(f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1/{case_uuid(1)}", headers=key).status_code
        == 200
    )


def test_listing_pages_through_every_case(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    seen, token, pages = [], None, 0
    while True:
        page = client.list_cases(page_size=2, page_token=token)
        seen += [case["readableId"] for case in page.cases]
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"CASE-{n}" for n in range(1, 6)] and pages == 3
    assert [c["readableId"] for c in admin_get(sandbox, "coralogix/cases")["cases"]] == seen


def test_listing_takes_the_published_filters_and_int64_pagination(sandbox: SlackSandbox) -> None:
    """cases.yaml ListCases: CaseFilters narrow the list; pageSize/skip are int64 (number or string)."""

    def listed(body: dict[str, Any]) -> list[str]:
        answer = HTTP.post(f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1", json=body,
                           headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return [c["readableId"] for c in answer.json()["cases"]]

    assert listed({"filters": {"statuses": ["CASE_STATUS_ACTIVE", "CASE_STATUS_CLOSED"]}}) == [
        "CASE-1",
        "CASE-5",
    ]
    assert listed({"filters": {"priorities": ["CASE_PRIORITY_P2"]}}) == ["CASE-2"]
    assert listed({"filters": {"labels": [{"key": "env", "values": ["prod"]}]}}) == ["CASE-1", "CASE-2"]
    assert listed({"filters": {"textSearch": "disk"}}) == ["CASE-3"]
    assert listed({"filters": {"categories": ["CASE_CATEGORY_SECURITY"]}}) == []
    assert listed({"filters": {"someNewerFilter": True}}) == [f"CASE-{n}" for n in range(1, 6)]
    assert listed({"pagination": {"pageSize": "2", "skip": "1"}}) == ["CASE-2", "CASE-3"]
    for bad in ({"filters": {"statuses": ["ACTIVE"]}}, {"filters": {"labels": [{"key": "env"}]}},
                {"pagination": {"pageSize": 0}}, {"pagination": {"pageSize": "ten"}},
                {"pagination": {"skip": -1}}):  # fmt: skip
        answer = HTTP.post(f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1", json=bad,
                           headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"})  # fmt: skip
        assert (answer.status_code, answer.json()["code"]) == (400, 3), bad


def test_the_deep_link_is_an_absolute_url_on_the_sandbox(
    sandbox: SlackSandbox, client: CoralogixClient
) -> None:
    assert client.case_deep_link("CASE-2") == f"{sandbox.url}/#/cases/{case_uuid(2)}"


def test_a_comment_lands_on_the_timeline(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    log = {"log": {"logId": "l1", "logTimestamp": "2025-09-22T10:30:00Z", "logContent": "db-3 restarted"}}
    event = client.add_comment("CASE-3", "Restarted db-3", [log])
    assert set(event) == {"eventId", "actor", "createTime", "eventTime", "eventData"}  # CaseEvent
    assert event["eventData"] == {"comment": {"unsafeText": "Restarted db-3", "attachments": [log]}}
    assert "apiKey" in event["actor"]
    assert client.list_events("CASE-3")[-1] == event
    assert admin_get(sandbox, "coralogix/comments", case="CASE-3")["comments"] == [event]
    assert client.get_case("CASE-3")["updateTime"] == event["createTime"]


def test_a_comment_is_updated_and_deleted_by_its_event_id(
    sandbox: SlackSandbox, client: CoralogixClient
) -> None:
    event = client.add_comment("CASE-3", "Restarted db-3")
    updated = client.update_comment(event["eventId"], "Restarted db-3 and db-4")
    assert updated["eventId"] == event["eventId"] and updated["updateTime"]
    assert updated["eventData"]["comment"]["unsafeText"] == "Restarted db-3 and db-4"
    assert client.get_event(event["eventId"]) == updated
    assert [e for e in client.list_events("CASE-3") if "comment" in e["eventData"]] == [updated]
    client.delete_comment(event["eventId"])
    assert [e for e in client.list_events("CASE-3") if "comment" in e["eventData"]] == []
    gone = failure(lambda: client.update_comment(event["eventId"], "again"))
    assert gone.exit_code == EXIT_NOT_FOUND


def test_comment_event_rules(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    """One check per row of RULES that concerns Case events (each row names its place in cases.yaml)."""
    assert all(rule.source.startswith("coralogix-openapi-v5/") or "gRPC" in rule.source for rule in RULES)
    base = f"{sandbox.url}/mgmt/openapi/5/cases/events/v1"
    key = {"Authorization": f"Bearer {CORALOGIX_API_KEY}"}
    comment = client.add_comment("CASE-2", "Looking")["eventId"]
    created = client.list_events("CASE-2")[0]["eventId"]  # the `created` event: not a comment

    def status(verb: str, path: str, headers: dict[str, str] = key, **body: Any) -> tuple[int, int]:
        answer = HTTP.request(verb, f"{base}/{path}", json=body or None, headers=headers)
        return answer.status_code, answer.json().get("code", 0)

    assert status("PUT", f"{comment}/comments", {}, text="x") == (401, 16)
    read_only = {"Authorization": f"Bearer {CORALOGIX_READONLY_API_KEY}"}
    assert status("PUT", f"{comment}/comments", read_only, text="x") == (403, 7)
    assert status("DELETE", f"{comment}/comments", read_only) == (403, 7)
    assert status("GET", comment, read_only)[0] == 200  # reading needs case:Read only
    assert status("PUT", f"{comment}/comments", attachments=[]) == (400, 3)  # text is required
    assert status("PUT", f"{created}/comments", text="x") == (400, 3)
    for bad in ([{"url": "https://example.com/x.png"}], [{"file": {"fileId": "f"}}],
                [{"file": {"fileId": "f", "fileName": "a", "isDeleted": False}, "log": {}}]):  # fmt: skip
        assert status("PUT", f"{comment}/comments", text="x", attachments=bad) == (400, 3), bad
        posted = HTTP.post(f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1/CASE-2/comments",
                           json={"text": "x", "attachments": bad}, headers=key)  # fmt: skip
        assert posted.status_code == 400, bad
    good = [{"file": {"fileId": "f", "fileName": "a.png", "isDeleted": False}}]
    assert status("PUT", f"{comment}/comments", text="x", attachments=good)[0] == 200
    assert status("DELETE", f"{created}/comments") == (400, 3)
    assert status("PUT", "no-such-event/comments", text="x") == (404, 5)
    assert status("GET", "no-such-event") == (404, 5)


def test_admin_changes_and_creates_cases(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    changed = admin_post(sandbox, "coralogix/cases/update", id="CASE-1", status="CASE_STATUS_RESOLVED")
    assert changed["case"]["status"] == "CASE_STATUS_RESOLVED" == client.get_case("CASE-1")["status"]
    update = client.list_events("CASE-1")[-1]
    assert update["eventData"] == {
        "statusChanged": {"oldStatus": "CASE_STATUS_ACTIVE", "newStatus": "CASE_STATUS_RESOLVED"}
    }

    created = admin_post(sandbox, "coralogix/cases", title="Queue backlog", priority="CASE_PRIORITY_P2")
    assert created["case"]["readableId"] == "CASE-6"
    assert client.get_case("CASE-6")["title"] == "Queue backlog"

    refused = HTTP.post(
        f"{sandbox.url}/_sandbox/coralogix/cases/update", json={"id": "CASE-1", "status": "DONE"}
    )
    assert refused.status_code == 400 and "status" in refused.json()["detail"]
    missing = HTTP.post(f"{sandbox.url}/_sandbox/coralogix/cases/update", json={"id": "CASE-99"})
    assert missing.status_code == 404


def test_sync_requests_are_recorded(sandbox: SlackSandbox) -> None:
    url = f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1/CASE-1/sync-external-thread-comments"
    body = {"slack": {"channelId": "C0ALERTS", "threadId": "1700000000.000100"}}
    sent = HTTP.post(url, json=body, headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"})
    assert sent.status_code == 200 and sent.json() == {"syncRegistered": True}
    assert admin_get(sandbox, "coralogix/syncs")["syncs"] == [{"caseId": case_uuid(1), "request": body}]
    read_only = HTTP.post(url, json=body, headers={"Authorization": f"Bearer {CORALOGIX_READONLY_API_KEY}"})
    assert read_only.status_code == 403


# -- failures the client must survive or explain ---------------------------------------------
def test_503_twice_then_200_succeeds(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    admin_post(sandbox, "faults", kind="status", method="coralogix.cases.get", status=503, count=2)
    assert client.get_case("CASE-4")["title"] == "Slow queries on search"
    assert admin_get(sandbox, "calls")["methods"]["coralogix.cases.get"] == 3
    assert admin_get(sandbox, "calls")["pending_faults"] == []


def test_injected_faults_answer_in_coralogixs_error_shape(sandbox: SlackSandbox) -> None:
    """A 429 or 5xx on a Coralogix route has the gRPC-gateway body, not Slack's {ok, error}."""
    url = f"{sandbox.url}/mgmt/openapi/5/cases/cases/v1/CASE-1"
    key = {"Authorization": f"Bearer {CORALOGIX_API_KEY}"}
    admin_post(sandbox, "faults", kind="status", method="coralogix.cases.get", status=503)
    unavailable = HTTP.get(url, headers=key)
    admin_post(sandbox, "faults", kind="ratelimit", method="coralogix.cases.get", retry_after=3)
    limited = HTTP.get(url, headers=key)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json() == {"code": 8, "message": "Too Many Requests", "details": []}
    assert unavailable.status_code == 503 and unavailable.json()["code"] == 14
    assert set(unavailable.json()) == {"code", "message", "details"}


def test_a_wrong_key_is_401_naming_case_read(sandbox: SlackSandbox) -> None:
    with coralogix_client(sandbox, "not-the-secret") as client:
        error = failure(lambda: client.get_case("CASE-1"))
        assert error.exit_code == EXIT_AUTH and "case:Read" in error.message
        assert "not-the-secret" not in f"{error} {error!r} {error.hint} {client!r}"


def test_a_read_only_key_reads_but_gets_403_on_comments(sandbox: SlackSandbox) -> None:
    with coralogix_client(sandbox, CORALOGIX_READONLY_API_KEY) as client:
        assert client.list_events("CASE-1")
        error = failure(lambda: client.add_comment("CASE-1", "hi"))
        assert (error.code, error.exit_code) == ("coralogix_forbidden", EXIT_AUTH)
        assert "case:Comment" in error.message
    assert admin_get(sandbox, "coralogix/comments")["comments"] == []


def test_an_unknown_case_is_404(client: CoralogixClient) -> None:
    error = failure(lambda: client.case_deep_link("CASE-999"))
    assert error.exit_code == EXIT_NOT_FOUND and error.message == "no Case CASE-999"
    assert failure(lambda: client.get_case(case_uuid(999))).exit_code == EXIT_NOT_FOUND


# -- log ingestion ----------------------------------------------------------------------------
def test_logs_arrive_in_batches_under_the_limit(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    entries = [{"text": "small", "severity": 4}] + [{"text": "x" * 1_200_000} for _ in range(3)]
    result = client.send_logs(entries, application="cxslack", subsystem="test")
    assert (result.entries, result.batches) == (4, 3)
    logs = admin_get(sandbox, "coralogix/logs")["logs"]
    assert len(logs) == 4 and logs[0]["text"] == "small" and logs[0]["severity"] == 4
    assert {(e["applicationName"], e["subsystemName"]) for e in logs} == {("cxslack", "test")}
    assert admin_get(sandbox, "calls")["methods"]["coralogix.logs.singles"] == 3


def test_ingestion_refuses_big_bodies_bad_entries_and_wrong_keys(sandbox: SlackSandbox) -> None:
    auth = {"Authorization": f"Bearer {CORALOGIX_SEND_KEY}"}
    entry = {"applicationName": "a", "subsystemName": "s", "text": "t"}
    assert HTTP.post(sandbox.url + "/logs/v1/singles", json=[entry], headers=auth).status_code == 200
    # /bulk: one object, the names once, `logEntries` each with severity and text (Coralogix REST API /bulk)
    bulk = {"applicationName": "a", "subsystemName": "s", "logEntries": [{"severity": 3, "text": "t"}]}
    assert HTTP.post(sandbox.url + "/logs/v1/bulk", json=bulk, headers=auth).status_code == 200
    for wrong in (
        [entry],
        {**bulk, "logEntries": [{"text": "t"}]},
        {"logEntries": [{"severity": 3, "text": "t"}]},
    ):
        assert HTTP.post(sandbox.url + "/logs/v1/bulk", json=wrong, headers=auth).status_code == 400, wrong
    big = json.dumps([{**entry, "text": "x" * MAX_INGEST_BYTES}])
    assert HTTP.post(sandbox.url + "/logs/v1/singles", content=big, headers=auth).status_code == 413
    bad = HTTP.post(sandbox.url + "/logs/v1/singles", json=[{**entry, "severity": 9}], headers=auth)
    assert bad.status_code == 400 and "severity" in bad.json()["message"]
    assert HTTP.post(sandbox.url + "/logs/v1/singles", json=[entry]).status_code == 401
    assert len(admin_get(sandbox, "coralogix/logs")["logs"]) == 2

    with coralogix_client(sandbox, CX_SEND_KEY="sekrit-value-123") as client:
        error = failure(lambda: client.send_logs([{"text": "t"}], application="a", subsystem="s"))
        assert error.exit_code == EXIT_AUTH and "Send-Your-Data" in error.message
        assert "sekrit-value-123" not in f"{error} {error!r} {client!r}"


def test_reset_restores_the_seed(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    client.add_comment("CASE-1", "hello")
    admin_post(sandbox, "coralogix/cases", title="extra")
    admin_post(sandbox, "coralogix/reset")
    assert len(admin_get(sandbox, "coralogix/cases")["cases"]) == 5
    assert admin_get(sandbox, "coralogix/comments")["comments"] == []
