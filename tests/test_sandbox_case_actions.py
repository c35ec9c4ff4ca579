"""Acting on Cases and finding team members, on the sandbox's Coralogix side, over real loopback
sockets and through the real CoralogixClient: each rule of sandbox/case_actions.py has a test here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cxslack.coralogix.client import CoralogixClient
from cxslack.coralogix.team import find_active_member, search_members
from cxslack.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE, CxError
from cxslack.sandbox import SlackSandbox
from cxslack.sandbox.case_actions import CORALOGIX_TEAM_ID, RULES, member_id
from cxslack.sandbox.coralogix import CORALOGIX_API_KEY, CORALOGIX_READONLY_API_KEY

from .conftest import coralogix_client

HTTP = httpx.Client(timeout=10)
API = "/mgmt/openapi/5"
ALICE = member_id("alice@example.com")
BOB = member_id("bob@example.com")


def connect(sandbox: SlackSandbox, key: str = CORALOGIX_API_KEY) -> CoralogixClient:
    return coralogix_client(sandbox, key, CX_TEAM_ID=str(CORALOGIX_TEAM_ID))


@pytest.fixture
def client(sandbox: SlackSandbox) -> Iterator[CoralogixClient]:
    with connect(sandbox) as client:
        yield client


def raw(sandbox: SlackSandbox, verb: str, path: str, body: Any = None, key: str = CORALOGIX_API_KEY,
        **params: Any) -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return HTTP.request(verb, f"{sandbox.url}{API}{path}", json=body, headers=headers, params=params)


def actions(sandbox: SlackSandbox) -> list[dict[str, Any]]:
    return list(HTTP.get(f"{sandbox.url}/_sandbox/coralogix/actions").json()["actions"])


def admin(sandbox: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sandbox.url}/_sandbox/coralogix/{path}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_rule_names_its_source() -> None:
    assert RULES and all(rule.source.strip() for rule in RULES)


# -- acting through the client --------------------------------------------------------------
def test_acknowledge_names_the_actor_and_answers_the_case(
    sandbox: SlackSandbox, client: CoralogixClient
) -> None:
    case = client.acknowledge_case("CASE-1", ALICE)
    assert case["readableId"] == "CASE-1" and case["status"] == "CASE_STATUS_ACKNOWLEDGED"
    [call] = actions(sandbox)
    assert (call["verb"], call["path"], call["status"]) == ("POST", "/cases/acknowledged/v1", 200)
    assert call["body"] == {"ids": ["CASE-1"], "actor": {"userId": ALICE}}
    changed = [e for e in client.list_events("CASE-1") if "statusChanged" in e["eventData"]]
    assert changed[-1]["actor"] == {"user": {"id": ALICE}}


def test_assign_resolve_close(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    assert client.assign_case("CASE-1", BOB)["assignee"]
    resolved = client.resolve_case("CASE-1", "Resolved from Slack by Bob Brown <bob@example.com>")
    assert resolved["status"] == "CASE_STATUS_RESOLVED"
    assert client.close_case("CASE-1")["status"] == "CASE_STATUS_CLOSED"
    calls = [(c["verb"], c["path"], c["body"]) for c in actions(sandbox)]
    assert calls == [
        ("POST", "/cases/assigned/v1/CASE-1", {"assignee": {"userId": BOB}}),
        (
            "PUT",
            "/cases/resolved/v1/CASE-1",
            {"reason": "Resolved from Slack by Bob Brown <bob@example.com>"},
        ),
        ("POST", "/cases/closed/v1/CASE-1", None),
    ]


@pytest.mark.parametrize(
    ("act", "permission"),
    [
        (lambda c: c.acknowledge_case("CASE-1", ALICE), "case:Acknowledge"),
        (lambda c: c.assign_case("CASE-1", ALICE), "case:Assign"),
        (lambda c: c.resolve_case("CASE-1", "done"), "case:Close"),
        (lambda c: c.close_case("CASE-1"), "case:Close"),
    ],
)
def test_a_key_without_the_permission_gets_403_naming_it(sandbox: SlackSandbox, client: CoralogixClient,
                                                          act: Any, permission: str) -> None:  # fmt: skip
    admin(sandbox, "permissions", permissions=["case:Read", "case:Comment"])
    with pytest.raises(CxError) as info:
        act(client)
    assert (info.value.code, info.value.exit_code) == ("coralogix_forbidden", EXIT_AUTH)
    assert permission in info.value.message
    assert client.get_case("CASE-1")["status"] == "CASE_STATUS_ACTIVE"


def test_the_read_only_key_cannot_act_and_a_bad_key_is_401(sandbox: SlackSandbox) -> None:
    with connect(sandbox, CORALOGIX_READONLY_API_KEY) as readonly, pytest.raises(CxError) as info:
        readonly.acknowledge_case("CASE-1", ALICE)
    assert info.value.code == "coralogix_forbidden"
    with connect(sandbox, "not-a-key-at-all") as wrong, pytest.raises(CxError) as info:
        wrong.close_case("CASE-1")
    assert (info.value.code, info.value.exit_code) == ("coralogix_unauthorized", EXIT_AUTH)
    assert "case:Close" in info.value.message


def test_a_case_that_is_gone_is_not_found(client: CoralogixClient) -> None:
    with pytest.raises(CxError) as info:
        client.acknowledge_case("CASE-999", ALICE)
    assert (info.value.code, info.value.exit_code) == ("coralogix_not_found", EXIT_NOT_FOUND)


# -- the wire rules ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verb", "path", "body"),
    [
        ("POST", "/cases/acknowledged/v1", {"ids": ["CASE-1"]}),  # no actor
        ("POST", "/cases/acknowledged/v1", {"actor": {"userId": ALICE}}),  # no ids
        ("POST", "/cases/acknowledged/v1", {"ids": [], "actor": {"userId": ALICE}}),
        ("POST", "/cases/acknowledged/v1", {"ids": ["case 1"], "actor": {"userId": ALICE}}),
        ("POST", "/cases/acknowledged/v1", {"ids": ["CASE-1"], "actor": {"userId": "alice@example.com"}}),
        ("POST", "/cases/acknowledged/v1", {"ids": ["CASE-1"], "actor": {"userId": member_id("nobody@x")}}),
        ("POST", "/cases/assigned/v1/CASE-1", {}),
        ("PUT", "/cases/resolved/v1/CASE-1", {"reason": ""}),
        ("PUT", "/cases/resolved/v1/CASE-1", {"reason": "x" * 501}),
        ("POST", "/cases/closed/v1/" + "A" * 70 + "-1", None),
    ],
)
def test_malformed_requests_are_400_and_change_nothing(sandbox: SlackSandbox, verb: str, path: str,
                                                       body: Any) -> None:  # fmt: skip
    response = raw(sandbox, verb, path, body)
    assert response.status_code == 400 and response.json()["code"] == 3, response.text
    cases = HTTP.get(f"{sandbox.url}/_sandbox/coralogix/cases").json()["cases"]
    assert next(c for c in cases if c["readableId"] == "CASE-1")["status"] == "CASE_STATUS_ACTIVE"


def test_acknowledging_several_checks_every_id_first(sandbox: SlackSandbox) -> None:
    response = raw(
        sandbox, "POST", "/cases/acknowledged/v1", {"ids": ["CASE-1", "CASE-404"], "actor": {"userId": ALICE}}
    )
    assert response.status_code == 404
    cases = HTTP.get(f"{sandbox.url}/_sandbox/coralogix/cases").json()["cases"]
    assert next(c for c in cases if c["readableId"] == "CASE-1")["status"] == "CASE_STATUS_ACTIVE"


def test_faults_reach_the_action_endpoints(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    HTTP.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "status", "method": "coralogix.cases.acknowledge",
                                                      "status": 500, "count": 1}).raise_for_status()  # fmt: skip
    with pytest.raises(CxError) as info:
        client.acknowledge_case("CASE-1", ALICE)  # not retried: it may have been applied
    assert info.value.code == "coralogix_unavailable"
    assert client.acknowledge_case("CASE-1", ALICE)["status"] == "CASE_STATUS_ACKNOWLEDGED"


def test_the_client_refuses_what_the_api_would(client: CoralogixClient) -> None:
    for act in (lambda: client.acknowledge_case("CASE-1", "alice"), lambda: client.resolve_case("CASE-1", " "),
                lambda: client.resolve_case("CASE-1", "x" * 501), lambda: client.close_case("not a case")):  # fmt: skip
        with pytest.raises(CxError) as info:
            act()
        assert info.value.exit_code == EXIT_USAGE


# -- team members -----------------------------------------------------------------------------
def test_search_matches_usernames_partially_and_pages(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    found = [m.username for m in search_members(client, CORALOGIX_TEAM_ID, username="bob@example.com")]
    assert sorted(found) == ["bob@example.com", "bob@example.com.au", "jimbob@example.com"]
    everyone = list(search_members(client, CORALOGIX_TEAM_ID, status=None))
    assert len(everyone) == 7 and len({m.user_id for m in everyone}) == 7
    first = raw(sandbox, "GET", f"/aaa/teams/v2/{CORALOGIX_TEAM_ID}/search", page_size=3).json()
    assert len(first["users"]) == 3 and first["nextPageToken"] == 3 and first["totalCount"] == 7
    assert set(first["users"][0]) == {
        "userId",
        "username",
        "firstName",
        "lastName",
        "status",
        "userAccountId",
    }


def test_only_an_exact_active_member_is_the_person(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    bob = find_active_member(client, CORALOGIX_TEAM_ID, "Bob@Example.com")
    assert bob is not None and (bob.user_id, bob.name) == (BOB, "Bob Brown")
    assert find_active_member(client, CORALOGIX_TEAM_ID, "dave@example.com") is None  # inactive
    assert find_active_member(client, CORALOGIX_TEAM_ID, "ob@example.com") is None  # partial only
    admin(sandbox, "team/remove", username="bob@example.com")
    assert find_active_member(client, CORALOGIX_TEAM_ID, "bob@example.com") is None


def test_search_rules(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    assert raw(sandbox, "GET", "/aaa/teams/v2/999/search").status_code == 404
    with pytest.raises(CxError) as info:
        list(search_members(client, 999, username="bob@example.com"))
    assert info.value.code == "coralogix_not_found" and "team id" in info.value.message
    path = f"/aaa/teams/v2/{CORALOGIX_TEAM_ID}/search"
    assert raw(sandbox, "GET", path, key="").status_code == 401
    assert raw(sandbox, "GET", path, page_size="ten").status_code == 400
    assert raw(sandbox, "GET", path, status="ACTIVE").status_code == 400
    active = raw(sandbox, "GET", path, status="USER_STATUS_ACTIVE", page_size=100).json()["users"]
    assert "dave@example.com" not in {u["username"] for u in active}


def test_acknowledging_one_case_by_id_takes_no_body(sandbox: SlackSandbox, client: CoralogixClient) -> None:
    """cases.yaml AcknowledgeCase: PUT /cases/acknowledged/v1/{id}, no request body, case:Acknowledge."""
    answer = raw(sandbox, "PUT", "/cases/acknowledged/v1/CASE-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["case"]["status"] == "CASE_STATUS_ACKNOWLEDGED"
    assert client.get_case("CASE-1")["status"] == "CASE_STATUS_ACKNOWLEDGED"
    assert raw(sandbox, "PUT", "/cases/acknowledged/v1").status_code == 404  # the id is part of the path
    assert raw(sandbox, "PUT", "/cases/acknowledged/v1/CASE-999").status_code == 404
    admin(sandbox, "permissions", permissions=["case:Read"])
    assert raw(sandbox, "PUT", "/cases/acknowledged/v1/CASE-3").status_code == 403


def test_the_keys_role_governs_reading_and_commenting_too(
    sandbox: SlackSandbox, client: CoralogixClient
) -> None:
    """cases.yaml: GetCase needs case:Read and CreateComment case:Comment, whatever set the role."""
    admin(sandbox, "permissions", permissions=["case:Read"])
    assert client.get_case("CASE-1")["readableId"] == "CASE-1"
    assert raw(sandbox, "POST", "/cases/cases/v1/CASE-1/comments", {"text": "hi"}).status_code == 403
    admin(sandbox, "permissions", permissions=["case:Comment"])
    assert raw(sandbox, "GET", "/cases/cases/v1/CASE-1").status_code == 403
    assert raw(sandbox, "POST", "/cases/cases/v1/CASE-1/comments", {"text": "hi"}).status_code == 200


def test_a_case_carries_its_acknowledge_time_and_resolution_details(client: CoralogixClient) -> None:
    """cases.yaml Case.acknowledgeTime and ResolutionDetails {resolveTime, reason, resolvedBy: CaseResolver}."""
    assert "acknowledgeTime" not in client.get_case("CASE-1") and "resolutionDetails" not in client.get_case(
        "CASE-1"
    )
    acknowledged = client.acknowledge_case("CASE-1", ALICE)
    assert acknowledged["acknowledgeTime"].endswith("Z") and "resolutionDetails" not in acknowledged
    resolved = client.resolve_case("CASE-1", "db failover")
    details = resolved["resolutionDetails"]
    assert details["reason"] == "db failover" and details["resolvedBy"] == {"apiKey": {}}
    assert details["resolveTime"] >= acknowledged["acknowledgeTime"]
    assert client.close_case("CASE-1")["resolutionDetails"] == details
