"""The Slack access layer against the sandbox over real sockets: retries, errors, hygiene."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from cxslack.errors import UsageError
from cxslack.redact import redact
from cxslack.sandbox import SlackSandbox
from cxslack.slack.client import OutcomeUnknown, RetryPolicy, SlackAccess, SlackError, header, slack_timeout
from tests.conftest import wait_for

FAST = RetryPolicy(backoff=0.01)


def admin(sandbox: SlackSandbox, action: str, **body: Any) -> Any:
    response = httpx.post(f"{sandbox.url}/_sandbox/{action}", json=body)
    response.raise_for_status()
    return response.json()


def calls(sandbox: SlackSandbox) -> Any:
    return httpx.get(f"{sandbox.url}/_sandbox/calls").json()


def bot(sandbox: SlackSandbox, scopes: list[str] | None = None, policy: RetryPolicy = FAST) -> SlackAccess:
    token = sandbox.issue_token(scopes=scopes)["access_token"]
    return SlackAccess(token, base_url=sandbox.api_url, policy=policy)


def test_auth_test_reads_granted_scopes_from_the_header(sandbox: SlackSandbox) -> None:
    info = bot(sandbox, ["chat:write", "links:read"]).auth_test()
    assert info.team_id == "T0SANDBOX"
    assert info.scopes == ["chat:write", "links:read"]
    assert info.bot_id


def test_headers_are_looked_up_case_insensitively() -> None:
    assert header({"X-OAuth-Scopes": "a,b"}, "x-oauth-scopes") == "a,b"
    assert header({"retry-after": ["3"]}, "Retry-After") == "3"
    assert header(None, "anything") is None


def test_429_with_retry_after_is_waited_out(sandbox: SlackSandbox) -> None:
    access = bot(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="ratelimit", retry_after=1, count=1)
    started = time.monotonic()
    access.auth_test()
    assert time.monotonic() - started >= 1.0  # never an immediate retry
    log = calls(sandbox)
    assert log["ratelimited"] == 1
    assert log["violations"] == []


def test_retry_after_beyond_the_cap_fails_clearly_instead_of_hanging(sandbox: SlackSandbox) -> None:
    access = bot(sandbox, policy=RetryPolicy(backoff=0.01, max_retry_after=2))
    admin(sandbox, "faults", method="auth.test", kind="ratelimit", retry_after=30, count=1)
    started = time.monotonic()
    with pytest.raises(SlackError) as info:
        access.auth_test()
    assert time.monotonic() - started < 5
    assert info.value.code == "ratelimited"
    assert info.value.retry_after == 30


def test_persistent_503_ends_in_a_clear_error_after_bounded_retries(sandbox: SlackSandbox) -> None:
    access = bot(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="status", status=503, count=5)
    with pytest.raises(SlackError) as info:
        access.auth_test()
    assert info.value.code == "slack_unavailable"
    assert "503" in info.value.message
    assert calls(sandbox)["methods"]["auth.test"] == 1 + FAST.server_error_retries


def test_a_few_503s_are_retried_to_success(sandbox: SlackSandbox) -> None:
    access = bot(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="status", status=503, count=2)
    assert access.auth_test().team_id == "T0SANDBOX"


def test_a_dropped_connection_is_retried(sandbox: SlackSandbox) -> None:
    access = bot(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="drop", count=1)
    assert access.auth_test().team_id == "T0SANDBOX"


def test_unreachable_slack_is_a_clear_error() -> None:
    access = SlackAccess(
        "xoxb-" + "1-2-unreachable", base_url="http://127.0.0.1:9/api/", policy=RetryPolicy(backoff=0.01)
    )
    with pytest.raises(SlackError) as info:
        access.auth_test()
    assert info.value.code == "slack_unreachable"


@pytest.mark.parametrize("action", ["revoke", "uninstall"])
def test_revoked_token_or_removed_app_surfaces_as_failing(sandbox: SlackSandbox, action: str) -> None:
    access = bot(sandbox)
    admin(sandbox, action)
    with pytest.raises(SlackError) as info:
        access.auth_test()
    assert info.value.token_invalid
    assert info.value.exit_code == 4
    assert "cxslack integrations authorize" in (info.value.hint or "")


def test_missing_scope_reports_needed_and_provided(sandbox: SlackSandbox) -> None:
    access = bot(sandbox, ["chat:write"])
    with pytest.raises(SlackError) as info:
        access.call("chat.unfurl", channel="C0", ts="1.0", unfurls={})
    assert info.value.code == "missing_scope"
    assert "links:write" in info.value.message
    assert "chat:write" in info.value.message
    assert info.value.exit_code == 4


def test_private_channel_error_says_to_invite_the_app(sandbox: SlackSandbox) -> None:
    with pytest.raises(SlackError) as info:
        bot(sandbox).post_message("secure-ops", "hello")
    assert info.value.code == "channel_not_found"
    assert "/invite" in (info.value.hint or "")


def test_archived_channel_is_reported(sandbox: SlackSandbox) -> None:
    with pytest.raises(SlackError) as info:
        bot(sandbox).post_message("old-alerts", "hello")
    assert info.value.code == "is_archived"


def post_twenty_at_once(access: SlackAccess) -> list[str]:
    texts = [f"message {n}" for n in range(20)]
    threads = [threading.Thread(target=access.post_message, args=("alerts", text)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return texts


def posted_texts(sandbox: SlackSandbox) -> list[str]:
    messages = httpx.get(f"{sandbox.url}/_sandbox/messages", params={"channel": "alerts"}).json()["messages"]
    return sorted(m["text"] for m in messages)


def test_twenty_fast_messages_to_one_channel_arrive_exactly_once(sandbox: SlackSandbox) -> None:
    """Without client pacing the sandbox's limit is hit: 429s are waited out, nothing is sent
    while a Retry-After is pending, and every message lands exactly once."""
    admin(sandbox, "settings", per_channel_rate=50.0, burst=5)
    access = bot(sandbox, policy=RetryPolicy(backoff=0.01, channel_rate=None))
    texts = post_twenty_at_once(access)
    assert posted_texts(sandbox) == sorted(texts)
    log = calls(sandbox)
    assert log["ratelimited"] > 0  # the limit was really hit …
    assert log["violations"] == []  # … and nothing was sent while a Retry-After was pending


def test_client_pacing_stays_under_the_channel_limit(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", per_channel_rate=20.0, burst=3)
    access = bot(sandbox, policy=RetryPolicy(backoff=0.01, channel_rate=18.0, channel_burst=2))
    texts = post_twenty_at_once(access)
    assert posted_texts(sandbox) == sorted(texts)
    assert calls(sandbox)["ratelimited"] == 0


def test_tokens_never_appear_in_error_text(sandbox: SlackSandbox) -> None:
    token = sandbox.issue_token()["access_token"]
    access = SlackAccess(token, base_url=sandbox.api_url, policy=FAST)
    admin(sandbox, "revoke")
    with pytest.raises(SlackError) as info:
        access.auth_test()
    assert token not in str(info.value) and token not in (info.value.hint or "")
    assert redact(f"token={token}") == f"token={token[:4]}-****"


# -- sent or not: an answer lost after sending -------------------------------------------------
SHORT = 0.3  # seconds: to connect, and then for the answer


def channel_texts(sandbox: SlackSandbox, channel: str) -> list[str]:
    messages = httpx.get(f"{sandbox.url}/_sandbox/messages", params={"channel": channel}).json()["messages"]
    return [m["text"] for m in messages]


@pytest.mark.parametrize("kind", ["late", "lost"])
def test_a_post_whose_answer_is_lost_is_outcome_unknown_and_never_resent(
    sandbox: SlackSandbox, kind: str
) -> None:
    token = sandbox.issue_token()["access_token"]
    access = SlackAccess(token, base_url=sandbox.api_url, policy=FAST, timeout=SHORT)
    admin(sandbox, "faults", method="chat.postMessage", kind=kind, seconds=1.0)
    started = time.time()
    with pytest.raises(OutcomeUnknown) as info:
        access.post_message("general", "only once")
    assert info.value.code == "outcome_unknown" and info.value.channel == "general"
    assert started <= info.value.sent_at <= time.time()
    assert ("0.3 s" in info.value.message) == (kind == "late")
    assert calls(sandbox)["methods"]["chat.postMessage"] == 1  # no retry
    assert channel_texts(sandbox, "general").count("only once") == 1  # it landed all the same


def test_a_5xx_other_than_503_on_a_post_is_outcome_unknown(sandbox: SlackSandbox) -> None:
    access = bot(sandbox)
    admin(sandbox, "faults", method="chat.postMessage", kind="status", status=504)
    with pytest.raises(OutcomeUnknown):
        access.post_message("general", "maybe")
    admin(sandbox, "faults", method="chat.postMessage", kind="status", status=503)
    assert access.post_message("general", "surely")["ok"]  # 503: not taken in, so sent again


def test_a_late_answer_to_a_method_that_does_not_post_is_retried(sandbox: SlackSandbox) -> None:
    token = sandbox.issue_token()["access_token"]
    access = SlackAccess(token, base_url=sandbox.api_url, policy=FAST, timeout=SHORT)
    admin(sandbox, "faults", method="auth.test", kind="late", seconds=1.0)
    assert access.auth_test().team_id == "T0SANDBOX"
    assert calls(sandbox)["methods"]["auth.test"] == 2


def test_the_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert slack_timeout() == 15.0
    monkeypatch.setenv("CXSLACK_SLACK_TIMEOUT", "2.5")
    assert slack_timeout() == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv("CXSLACK_SLACK_TIMEOUT", bad)
        with pytest.raises(UsageError) as info:
            slack_timeout()
        assert "CXSLACK_SLACK_TIMEOUT" in info.value.message


# -- rate limits keyed as Slack applies them ---------------------------------------------------
def test_a_tier_429_holds_that_method_for_every_channel_and_thread(sandbox: SlackSandbox) -> None:
    """conversations.join is Tier 3, limited per method and workspace: a Retry-After answered for
    one channel's join holds the joins to every other channel, in every thread, until it passes."""
    access = bot(sandbox)
    admin(sandbox, "faults", method="conversations.join", kind="ratelimit", retry_after=2)
    channels = ["C0ALERTS", "C0CASES", "C0GENERAL", "C0DBCASES"]
    first = threading.Thread(
        target=access.call, args=("conversations.join",), kwargs={"channel": channels[0]}
    )
    first.start()
    method_key = access.keys("conversations.join", "C0ANY").holds[0]
    wait_for(lambda: access.pacing.held(method_key))  # its 429 is in; the others start during the window
    others = [
        threading.Thread(target=access.call, args=("conversations.join",), kwargs={"channel": c})
        for c in channels[1:]
    ]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=30)
    log = calls(sandbox)
    joins = [a for a in log["arrivals"] if a["method"] == "conversations.join"]
    answered = joins[0]["answered"]
    assert joins[0]["status"] == 429
    assert all(a["at"] >= answered + 2 for a in joins[1:]), joins  # nothing until the window passed
    assert len(joins) == len(channels) + 1 and log["violations"] == []


def test_a_channel_named_by_name_and_by_id_is_paced_as_one(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", per_channel_rate=20.0, burst=3)
    access = bot(sandbox, policy=RetryPolicy(backoff=0.01, channel_rate=18.0, channel_burst=2))
    access.post_message("alerts", "learn the ID")
    threads = [
        threading.Thread(target=access.post_message, args=(("alerts", "#alerts", "C0ALERTS")[n % 3], f"m{n}"))
        for n in range(18)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(channel_texts(sandbox, "alerts")) == 19
    assert calls(sandbox)["ratelimited"] == 0


def test_a_429_on_one_channel_holds_posts_to_every_channel(sandbox: SlackSandbox) -> None:
    """Slack's 429 does not say whether the channel's or the workspace-wide limit was hit, so a
    Retry-After for chat.postMessage holds both keys."""
    access = bot(sandbox)
    admin(sandbox, "faults", method="chat.postMessage", kind="ratelimit", retry_after=2)
    first = threading.Thread(target=access.post_message, args=("general", "first"))
    first.start()
    wait_for(lambda: access.pacing.held(access.keys("chat.postMessage", "general").holds[0]))
    access.post_message("alerts", "second")
    first.join(timeout=30)
    posts = [a for a in calls(sandbox)["arrivals"] if a["method"] == "chat.postMessage"]
    assert posts[0]["status"] == 429
    assert all(a["at"] >= posts[0]["answered"] + 2 for a in posts[1:])
    assert channel_texts(sandbox, "general") == ["first"] and channel_texts(sandbox, "alerts") == ["second"]


# -- the transport: slack-sdk's WebClient -------------------------------------------------------
class StubAnswers(BaseHTTPRequestHandler):
    """What a proxy or load balancer in front of Slack may answer instead of Slack's JSON: the
    path's last part picks the answer (`/api/<status>-<body>/<method>`)."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, bytes]]] = []
    BODIES: ClassVar[dict[str, bytes]] = {
        "html": b"<html><body>502 Bad Gateway</body></html>",
        "broken": b'{"ok": true, "channel": "C0',
        "ok": b'{"ok": true}',
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, body))
        status, kind = self.path.split("/")[2].split("-")
        answer = self.BODIES[kind]
        self.send_response(int(status))
        self.send_header("Content-Type", "application/json" if kind != "html" else "text/html")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubAnswers)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StubAnswers.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()


def stubbed(stub: str, answer: str) -> SlackAccess:
    return SlackAccess("xoxb-" + "1-2-stubbed", base_url=f"{stub}{answer}/", policy=FAST)


def test_an_answer_that_is_not_json_is_never_taken_for_slack_s(stub: str) -> None:
    """A post whose answer cannot be read may have been posted (OutcomeUnknown, not sent again);
    another method's is an error; a 4xx page without Slack's error is Slack being unavailable."""
    for answer in ("200-html", "200-broken", "502-html"):
        with pytest.raises(OutcomeUnknown) as info:
            stubbed(stub, answer).post_message("C0ALERTS", "maybe")
        assert ("HTTP 502" if answer == "502-html" else "could not be read") in info.value.message
    assert len(StubAnswers.seen) == 3  # none sent twice
    with pytest.raises(SlackError) as refused:
        stubbed(stub, "200-html").auth_test()
    assert refused.value.code == "unknown_error" and not isinstance(refused.value, OutcomeUnknown)
    with pytest.raises(SlackError) as unavailable:
        stubbed(stub, "400-html").auth_test()
    assert unavailable.value.code == "slack_unavailable" and "HTTP 400" in unavailable.value.message


def test_arguments_travel_in_the_body_never_in_the_url(stub: str) -> None:
    access = stubbed(stub, "200-ok")
    access.call(
        "conversations.history", channel="C0ALERTS", limit=1, include_all_metadata=True, http_verb="GET"
    )
    access.call("chat.update", channel="C0ALERTS", ts="1.2", blocks=[{"type": "divider"}])
    (read_path, read_body), (update_path, update_body) = StubAnswers.seen
    assert "?" not in read_path + update_path
    assert read_body == b"channel=C0ALERTS&limit=1&include_all_metadata=1"
    assert b"blocks=%5B%7B%22type%22%3A+%22divider%22%7D%5D" in update_body  # JSON, form-encoded


def test_slack_sdk_logs_nothing_anywhere(sandbox: SlackSandbox, capfd: pytest.CaptureFixture[str]) -> None:
    """slack-sdk logs every failed attempt at ERROR and, at DEBUG, request bodies: none of it
    reaches stderr or the logging tree, even with the root logger at DEBUG; cxslack reports
    failures itself, redacted."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        token = sandbox.issue_token()["access_token"]
        SlackAccess(token, base_url=sandbox.api_url, policy=FAST).post_message("general", "a secret plan")
        with pytest.raises(SlackError):
            SlackAccess(token, base_url="http://127.0.0.1:9/api/", policy=FAST).auth_test()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [r.getMessage() for r in records if r.name.startswith(("slack_sdk", "cxslack"))] == []
    assert capfd.readouterr().err == ""


def test_a_proxy_in_the_environment_is_skipped_for_hosts_no_proxy_names(
    sandbox: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slack-sdk sends Web API calls through HTTPS_PROXY; urllib skips the hosts NO_PROXY names."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert bot(sandbox).auth_test().team_id == "T0SANDBOX"


def test_credentials_in_the_api_url_are_not_taken_for_the_host(sandbox: SlackSandbox) -> None:
    token = sandbox.issue_token()["access_token"]
    url = sandbox.api_url.replace("http://", "http://ops:hunter2-sekrit@")
    assert SlackAccess(token, base_url=url, policy=FAST).auth_test().team_id == "T0SANDBOX"
