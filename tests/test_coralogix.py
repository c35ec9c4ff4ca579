"""Coralogix: where the account is (regions, precedence, cx profiles) and the client at the httpx edge."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from cxslack.coralogix.client import MAX_REQUEST_BYTES, CoralogixClient
from cxslack.coralogix.config import CoralogixSettings, resolve_settings, save_settings
from cxslack.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_PARTIAL, EXIT_USAGE, CxError
from cxslack.store import Store

from .conftest import Cli

API_KEY = "cx-api-key-for-tests"  # both are on the suite's leak-scan list
SEND_KEY = "cx-send-key-for-tests"
API = "https://api.eu2.coralogix.com"
INGRESS = "https://ingress.eu2.coralogix.com"
CASES = f"{API}/mgmt/openapi/5/cases/cases/v1"
CASE = {"id": "0db8048e-4ef5-53e8-83f0-d01486aafdbe", "readableId": "CASE-123", "title": "CPU high"}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp HOME, so the developer's own ~/.cx profiles never leak into a test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for name in ("CXSLACK_CORALOGIX_API_URL", "CXSLACK_CORALOGIX_INGRESS_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


def cx_profile(home: Path, text: str, name: str = "default") -> Path:
    path = home / ".cx" / "profiles" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Sleeps(list[float]):
    """Stands in for time.sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> CoralogixClient:
    settings = CoralogixSettings(API, INGRESS, API_KEY, SEND_KEY, "eu2")
    return CoralogixClient(settings, backoff=0.01, max_retry_after=5, sleep=sleeps)


def assert_no_key(*texts: object) -> None:
    for text in texts:
        assert API_KEY not in str(text) and SEND_KEY not in str(text)


def assert_safe(exc: CxError, client: CoralogixClient) -> None:
    assert_no_key(str(exc), repr(exc), exc.hint, repr(client), repr(client.settings))


# -- regions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "api", "ingress"),
    [
        ("eu1", "https://api.coralogix.com", "https://ingress.coralogix.com"),
        ("eu2", "https://api.eu2.coralogix.com", "https://ingress.eu2.coralogix.com"),
        ("us1", "https://api.coralogix.us", "https://ingress.coralogix.us"),
        ("us2", "https://api.cx498.coralogix.com", "https://ingress.cx498.coralogix.com"),
        ("us3", "https://api.us3.coralogix.com", "https://ingress.us3.coralogix.com"),
        ("ap1", "https://api.coralogix.in", "https://ingress.coralogix.in"),
        ("ap2", "https://api.coralogixsg.com", "https://ingress.coralogixsg.com"),
        ("ap3", "https://api.ap3.coralogix.com", "https://ingress.ap3.coralogix.com"),
    ],
)
def test_every_region_maps_to_its_hosts(region: str, api: str, ingress: str) -> None:
    for spelling in (region, region.upper()):
        settings = resolve_settings(region=spelling, environ={})
        assert (settings.region, settings.api_url, settings.ingress_url) == (region, api, ingress)
        assert settings.origins["api_url"] == f"region {region}"


def test_a_custom_environment_is_a_full_https_url() -> None:
    settings = resolve_settings(region="https://api.acme.coralogix.net/", environ={})
    assert settings.api_url == "https://api.acme.coralogix.net"
    assert settings.ingress_url == "https://ingress.acme.coralogix.net"


@pytest.mark.parametrize("region", ["mars", "http://api.coralogix.com", "eu9", "https://"])
def test_an_unknown_region_is_a_usage_error_naming_where_it_came_from(region: str) -> None:
    with pytest.raises(CxError) as info:
        resolve_settings(environ={"CX_REGION": region})
    assert info.value.exit_code == EXIT_USAGE and info.value.code == "coralogix_region_invalid"
    assert "CX_REGION" in info.value.message and "eu1" in (info.value.hint or "")


def test_the_url_overrides_win_over_the_region() -> None:
    env = {"CX_REGION": "us1", "CXSLACK_CORALOGIX_API_URL": "http://127.0.0.1:9/", "CX_API_KEY": API_KEY}
    env["CXSLACK_CORALOGIX_INGRESS_URL"] = "http://127.0.0.1:10"
    settings = resolve_settings(environ=env)
    assert (settings.api_url, settings.ingress_url) == ("http://127.0.0.1:9", "http://127.0.0.1:10")
    assert settings.origins["api_url"] == "env CXSLACK_CORALOGIX_API_URL"
    assert settings.management() == ("http://127.0.0.1:9", API_KEY)


# -- precedence: flags > env > cxslack config > cx profile -------------------------------------
LAYERS = {
    "flag": ("us2", "flag-key-000", "--region", "argument"),
    "env": ("ap1", "env-key-000", "env CX_REGION", "env CX_API_KEY"),
    "config": ("eu2", "config-key-000", "cxslack config", "cxslack credentials"),
    "profile": ("us1", "profile-key-000", "cx profile default", "cx profile default"),
}


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        ({"flag", "env", "config", "profile"}, "flag"),
        ({"env", "config", "profile"}, "env"),
        ({"config", "profile"}, "config"),
        ({"profile"}, "profile"),
        ({"flag", "profile"}, "flag"),
        ({"env", "profile"}, "env"),
    ],
)
def test_precedence(present: set[str], winner: str, home: Path) -> None:
    if "profile" in present:
        cx_profile(home, 'region = "us1"\nauth = "api_key"\napi_key = "profile-key-000"\n')
    if "config" in present:
        save_settings(Store(), region="eu2", api_key="config-key-000")
    env = {"CX_REGION": "ap1", "CX_API_KEY": "env-key-000"} if "env" in present else {}
    flags = {"region": "us2", "api_key": "flag-key-000"} if "flag" in present else {}
    settings = resolve_settings(environ=env, **flags)
    region, key, region_origin, key_origin = LAYERS[winner]
    assert (settings.region, settings.api_key) == (region, key)
    assert settings.origins["region"].startswith(region_origin)
    assert settings.source.startswith(key_origin)
    assert key not in settings.source and key not in repr(settings)


def test_each_value_falls_through_on_its_own(home: Path) -> None:
    cx_profile(home, 'region = "us1"\napi_key = "profile-key-000"\n')
    settings = resolve_settings(environ={"CX_REGION": "eu2"})
    assert (settings.region, settings.api_key) == ("eu2", "profile-key-000")
    assert settings.source.startswith("cx profile default")


def test_nothing_configured_resolves_and_fails_only_when_used() -> None:
    settings = resolve_settings(environ={})
    assert settings.api_key is None and settings.source == "not set" and settings.api_url is None
    with pytest.raises(CxError) as info:
        settings.management()
    assert (info.value.code, info.value.exit_code) == ("coralogix_key_missing", EXIT_AUTH)
    assert info.value.hint == "cxslack coralogix configure, or set CX_API_KEY"
    with pytest.raises(CxError) as info:
        CoralogixSettings(None, None, API_KEY, None).management()
    assert (info.value.code, info.value.exit_code) == ("coralogix_region_missing", EXIT_USAGE)
    with pytest.raises(CxError) as info:
        CoralogixSettings(API, INGRESS, API_KEY, None).ingestion()
    assert "CX_SEND_KEY" in (info.value.hint or "")


def test_cx_profile_picks_the_file(home: Path) -> None:
    cx_profile(home, 'region = "ap3"\napi_key = "staging-key-000"\n', name="staging")
    assert resolve_settings(environ={"CX_PROFILE": "staging"}).region == "ap3"
    assert resolve_settings(profile="staging", environ={"CX_PROFILE": "nope"}).region == "ap3"


def test_a_missing_or_broken_profile_matters_only_when_it_is_needed(home: Path) -> None:
    env = {"CX_PROFILE": "nope", "CX_REGION": "eu1", "CX_API_KEY": API_KEY}
    assert resolve_settings(environ=env).api_key == API_KEY  # never reached the profile
    with pytest.raises(CxError) as info:
        resolve_settings(environ={"CX_PROFILE": "nope"})
    assert (info.value.code, info.value.exit_code) == ("cx_profile_not_found", EXIT_USAGE)
    assert "nope.toml" in info.value.message

    assert resolve_settings(environ={}).region is None  # no default profile: simply not there
    path = cx_profile(home, 'region = "eu1\n')
    assert resolve_settings(environ={"CX_REGION": "eu1", "CX_API_KEY": API_KEY}).region == "eu1"
    with pytest.raises(CxError) as info:
        resolve_settings(environ={})
    assert info.value.code == "config_unreadable" and str(path) in info.value.message
    cx_profile(home, "region = 5\n")
    with pytest.raises(CxError) as info:
        resolve_settings(environ={})
    assert "region must be a string" in info.value.message


def test_a_profile_whose_key_lives_elsewhere_says_so(home: Path) -> None:
    cx_profile(home, 'region = "eu1"\nauth = "api_key"\ncredential_storage = "os_store"\n')
    settings = resolve_settings(environ={})
    with pytest.raises(CxError) as info:
        settings.management()
    assert info.value.code == "coralogix_key_missing" and "OS credential store" in info.value.message


# -- the client: Cases ----------------------------------------------------------------------
def test_get_case_sends_the_key_as_a_bearer_token(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=f"{CASES}/CASE-123", json={"case": CASE})
    assert client.get_case("case-123") == CASE
    request = httpx_mock.get_requests()[0]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"


def test_deep_link_list_comment_and_events(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    link = f"https://acme.app.eu2.coralogix.com/#/cases/{CASE['id']}"
    httpx_mock.add_response(url=f"{CASES}/{CASE['id']}/deep-links", json={"deepLinks": {"detail": link}})
    httpx_mock.add_response(
        method="POST", url=CASES, json={"cases": [CASE], "pagination": {"nextPageToken": "p2"}}
    )
    event = {"id": "e1", "comment": {"text": "on it"}}
    httpx_mock.add_response(method="POST", url=f"{CASES}/CASE-123/comments", json={"event": event})
    httpx_mock.add_response(url=f"{CASES}/CASE-123/events", json={})  # protobuf JSON drops empty lists

    assert client.case_deep_link(CASE["id"].upper()) == link
    page = client.list_cases(page_size=10, page_token="p1")
    assert (page.cases, page.next_page_token) == ([CASE], "p2")
    graph = {"file": {"fileId": "f1", "fileName": "graph.png", "isDeleted": False}}  # CommentAttachment
    assert client.add_comment("CASE-123", "on it", [graph]) == event
    assert client.list_events("CASE-123") == []

    _, listed, commented, _ = httpx_mock.get_requests()
    assert json.loads(listed.content) == {"filters": {}, "pagination": {"pageSize": 10, "pageToken": "p1"}}
    assert json.loads(commented.content) == {"text": "on it", "attachments": [graph]}
    assert commented.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("junk", ["", "123", "CASE 1", "CASE-1/../x", "0db8048e-4ef5-53e8-83f0"])
def test_a_malformed_case_id_is_a_usage_error_without_a_request(client: CoralogixClient, junk: str) -> None:
    with pytest.raises(CxError) as info:
        client.get_case(junk)
    assert (info.value.code, info.value.exit_code) == ("invalid_case_id", EXIT_USAGE)


def test_401_is_an_auth_error_naming_case_read(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{CASES}/CASE-123", status_code=401, json={"code": 16, "message": "no"})
    with pytest.raises(CxError) as info:
        client.get_case("CASE-123")
    assert info.value.exit_code == EXIT_AUTH and "case:Read" in info.value.message
    assert "CX_API_KEY" in (info.value.hint or "")
    assert_safe(info.value, client)


def test_403_on_a_comment_names_case_comment(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=f"{CASES}/CASE-123/comments", status_code=403, json={})
    with pytest.raises(CxError) as info:
        client.add_comment("CASE-123", "hello")
    assert (info.value.code, info.value.exit_code) == ("coralogix_forbidden", EXIT_AUTH)
    assert "case:Comment" in info.value.message and "case:Comment" in (info.value.hint or "")
    assert_safe(info.value, client)


def test_404_is_not_found(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{CASES}/CASE-123/events", status_code=404, json={"code": 5})
    with pytest.raises(CxError) as info:
        client.list_events("CASE-123")
    assert info.value.exit_code == EXIT_NOT_FOUND and info.value.message == "no Case CASE-123"


def test_400_carries_coralogix_message(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=CASES, status_code=400, json={"message": "bad page size"})
    with pytest.raises(CxError) as info:
        client.list_cases()
    assert info.value.exit_code == EXIT_USAGE and "bad page size" in info.value.message


# -- the client: retries ----------------------------------------------------------------------
def test_503_twice_then_200_succeeds(client: CoralogixClient, httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    for _ in range(2):
        httpx_mock.add_response(url=f"{CASES}/CASE-123", status_code=503)
    httpx_mock.add_response(url=f"{CASES}/CASE-123", json={"case": CASE})
    assert client.get_case("CASE-123") == CASE
    assert len(httpx_mock.get_requests()) == 3
    assert sleeps == [0.01, 0.02]  # exponential backoff


def test_retries_are_bounded(client: CoralogixClient, httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{CASES}/CASE-123", status_code=502, is_reusable=True)
    with pytest.raises(CxError) as info:
        client.get_case("CASE-123")
    assert info.value.code == "coralogix_unavailable" and "after 4 attempts" in info.value.message
    assert len(httpx_mock.get_requests()) == 4 and len(sleeps) == 3
    assert_safe(info.value, client)


def test_429_waits_out_retry_after_capped(
    client: CoralogixClient, httpx_mock: HTTPXMock, sleeps: Sleeps
) -> None:
    httpx_mock.add_response(url=f"{CASES}/CASE-123", status_code=429, headers={"Retry-After": "3"})
    httpx_mock.add_response(url=f"{CASES}/CASE-123", status_code=429, headers={"Retry-After": "120"})
    httpx_mock.add_response(url=f"{CASES}/CASE-123", json={"case": CASE})
    assert client.get_case("CASE-123") == CASE
    assert sleeps == [3.0, 5.0]  # as asked, then the client's cap


def test_connection_errors_are_retried(
    client: CoralogixClient, httpx_mock: HTTPXMock, sleeps: Sleeps
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("connection refused"))
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    httpx_mock.add_response(url=f"{CASES}/CASE-123", json={"case": CASE})
    assert client.get_case("CASE-123") == CASE
    assert len(sleeps) == 2


def test_unreachable_after_retries(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("connection refused"), is_reusable=True)
    with pytest.raises(CxError) as info:
        client.get_case("CASE-123")
    assert info.value.code == "coralogix_unreachable" and "api.eu2.coralogix.com" in info.value.message
    assert len(httpx_mock.get_requests()) == 4


def test_a_comment_is_not_posted_twice(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    """A 500 or a read timeout may come after Coralogix stored the comment: no retry then."""
    url = f"{CASES}/CASE-123/comments"
    httpx_mock.add_response(method="POST", url=url, status_code=500)
    with pytest.raises(CxError):
        client.add_comment("CASE-123", "once")
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=url)
    with pytest.raises(CxError):
        client.add_comment("CASE-123", "once")
    # but "not now" answers are safe to retry
    httpx_mock.add_response(method="POST", url=url, status_code=503)
    httpx_mock.add_response(method="POST", url=url, json={"event": {"id": "e1"}})
    assert client.add_comment("CASE-123", "once") == {"id": "e1"}
    assert len(httpx_mock.get_requests()) == 4


# -- the client: log ingestion ------------------------------------------------------------------
def test_send_logs_fills_in_entries_and_uses_the_send_key(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=f"{INGRESS}/logs/v1/singles")
    result = client.send_logs(
        [{"text": "plain", "timestamp": 1700000000000}, {"text": {"json": True}, "severity": 6}],
        application="cxslack",
        subsystem="access-logs",
    )
    assert (result.entries, result.batches) == (2, 1)
    request = httpx_mock.get_requests()[0]
    assert request.headers["Authorization"] == f"Bearer {SEND_KEY}"
    first, second = json.loads(request.content)
    assert first["applicationName"] == "cxslack" and first["subsystemName"] == "access-logs"
    assert (first["timestamp"], first["severity"], first["text"]) == (1700000000000, 3, "plain")
    assert first["computerName"] and isinstance(second["timestamp"], int)
    assert (second["severity"], json.loads(second["text"])) == (6, {"json": True})


def test_send_logs_splits_requests_under_2_mb(client: CoralogixClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=f"{INGRESS}/logs/v1/singles", is_reusable=True)
    entries = [{"text": f"{i}:" + "x" * 700_000} for i in range(6)]  # two fit in a request
    result = client.send_logs(entries, application="a", subsystem="s")
    requests = httpx_mock.get_requests()
    assert (result.entries, result.batches) == (6, len(requests)) and len(requests) == 3
    received = [entry for r in requests for entry in json.loads(r.content)]
    assert [e["text"][:2] for e in received] == [f"{i}:" for i in range(6)]
    assert all(len(r.content) <= MAX_REQUEST_BYTES for r in requests)
    assert result.bytes == sum(len(r.content) for r in requests)


def test_send_logs_refuses_entries_it_cannot_send(client: CoralogixClient) -> None:
    for entry, problem in (
        ({"text": "x" * MAX_REQUEST_BYTES}, "bytes"),
        ({"text": "x", "severity": 7}, "severity"),
        ({"severity": 3}, "no text"),
    ):
        with pytest.raises(CxError) as info:
            client.send_logs([entry], application="a", subsystem="s")
        assert info.value.exit_code == EXIT_USAGE and problem in info.value.message


def test_a_failure_after_some_batches_is_a_partial_success(
    client: CoralogixClient, httpx_mock: HTTPXMock
) -> None:
    url = f"{INGRESS}/logs/v1/singles"
    httpx_mock.add_response(method="POST", url=url)
    httpx_mock.add_response(method="POST", url=url, status_code=401)
    entries = [{"text": "x" * 1_500_000}, {"text": "y" * 1_500_000}]
    with pytest.raises(CxError) as info:
        client.send_logs(entries, application="a", subsystem="s")
    assert info.value.exit_code == EXIT_PARTIAL and "1 of 2 entries were sent" in info.value.message
    assert "Send-Your-Data key" in info.value.message
    assert_safe(info.value, client)


# -- the CLI ------------------------------------------------------------------------------------
def configured(cli: Cli, *extra: str, input: str = f"{API_KEY}\n") -> dict[str, Any]:
    run = cli.ok(
        "coralogix", "configure", "--region", "eu2", "--api-key-stdin", *extra, "-o", "json", input=input
    )
    return run.json()["coralogix"]


def test_configure_stores_the_key_only_in_credentials(cli: Cli, cxslack_home: Path) -> None:
    run = cli.ok("coralogix", "configure", "--region", "eu2", "--api-key-stdin", input=f"{API_KEY}\n")
    assert API_KEY not in run.stdout + run.stderr
    credentials = cxslack_home / "credentials.toml"
    assert API_KEY in credentials.read_text()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    config = (cxslack_home / "config.toml").read_text()
    assert API_KEY not in config and 'region = "eu2"' in config
    settings = resolve_settings(environ={})
    assert settings.api_key == API_KEY and settings.source.startswith("cxslack credentials")


def test_configure_json_says_stored_not_the_key(cli: Cli) -> None:
    doc = configured(cli)
    assert doc["region"] == "eu2" and doc["api_url"] == API and doc["ingress_url"] == INGRESS
    assert (doc["api_key"], doc["send_key"]) == ("stored", "not set")
    doc = configured(cli, "--send-key-stdin", input=f"{API_KEY}\n{SEND_KEY}\n")
    assert doc["send_key"] == "stored"
    assert resolve_settings(environ={}).send_key == SEND_KEY
    doc = cli.ok("coralogix", "configure", "--region", "https://api.acme.example/", "-o", "json").json()
    assert (
        doc["coralogix"]["api_url"] == "https://api.acme.example" and doc["coralogix"]["api_key"] == "stored"
    )


@pytest.mark.parametrize(
    ("args", "input", "code"),
    [
        ((), None, "missing_value"),
        (("--region", "mars"), None, "coralogix_region_invalid"),
        (("--api-key-stdin",), "\n", "invalid_secret"),
        (("--profile", "../etc"), None, "invalid_profile"),
    ],
)
def test_configure_refuses_bad_input_and_writes_nothing(
    cli: Cli, cxslack_home: Path, args: tuple[str, ...], input: str | None, code: str
) -> None:
    run = cli("coralogix", "configure", *args, "-o", "json", input=input)
    assert run.exit_code == EXIT_USAGE and run.json()["error"]["code"] == code
    assert not (cxslack_home / "config.toml").exists() and not (cxslack_home / "credentials.toml").exists()


def test_show_masks_keys_and_says_where_each_value_came_from(cli: Cli, home: Path) -> None:
    configured(cli, "--send-key-stdin", input=f"{API_KEY}\n{SEND_KEY}\n")
    doc = cli.ok("coralogix", "show", "-o", "json").json()["coralogix"]
    assert (doc["api_key"], doc["send_key"], doc["region"]) == ("****", "****", "eu2")
    assert doc["sources"]["api_key"].startswith("cxslack credentials")
    assert doc["sources"]["region"].startswith("cxslack config")
    assert doc["profile"] == "default" and "(not found)" in doc["sources"]["profile"]

    cx_profile(home, 'region = "us1"\n')
    run = cli.ok("coralogix", "show", "--region", "ap2", env={"CX_API_KEY": "another-key-0000"})
    assert "another-key-0000" not in run.stdout and API_KEY not in run.stdout
    assert "ap2  (--region)" in run.stdout and "env CX_API_KEY" in run.stdout
    assert "https://api.coralogixsg.com" in run.stdout


def test_show_with_nothing_configured(cli: Cli) -> None:
    doc = cli.ok("coralogix", "show", "-o", "json").json()["coralogix"]
    assert doc["api_key"] is None and doc["sources"]["api_key"] == "not set" and doc["api_url"] is None


# -- the team id (Case buttons: whose members Slack users are matched to) ------------------------
def test_team_id_is_stored_shown_and_overridden_by_cx_team_id(cli: Cli, cxslack_home: Path) -> None:
    doc = cli.ok("coralogix", "configure", "--team-id", "4242", "-o", "json").json()["coralogix"]
    assert doc["team_id"] == 4242
    assert "team_id = 4242" in (cxslack_home / "config.toml").read_text()
    shown = cli.ok("coralogix", "show", "-o", "json").json()["coralogix"]
    assert shown["team_id"] == 4242 and shown["sources"]["team_id"].startswith("cxslack config")
    run = cli.ok("coralogix", "show", env={"CX_TEAM_ID": "77"})
    assert "77  (env CX_TEAM_ID)" in run.stdout
    assert resolve_settings(environ={"CX_TEAM_ID": "77"}).team() == 77
    warned = cli.ok("coralogix", "configure", "--team-id", "4243", env={"CX_TEAM_ID": "77"})
    assert "CX_TEAM_ID is set in the environment" in warned.stderr


@pytest.mark.parametrize("value", ["abc", "0", "-3", "9223372036854775808", "12 34"])
def test_a_team_id_that_is_not_a_positive_int64_is_refused(cli: Cli, cxslack_home: Path, value: str) -> None:
    run = cli("coralogix", "configure", "--team-id", value, "-o", "json")
    assert run.exit_code == EXIT_USAGE and run.json()["error"]["code"] == "invalid_team_id"
    assert not (cxslack_home / "config.toml").exists()


def test_no_team_id_says_how_to_set_one(cli: Cli) -> None:
    settings = resolve_settings(environ={})
    assert settings.team_id is None
    with pytest.raises(CxError) as info:
        settings.team()
    assert info.value.code == "coralogix_team_missing" and "--team-id" in str(info.value.hint)
