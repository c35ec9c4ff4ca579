"""The Slack access layer against the sandbox over real sockets: retries, errors, hygiene."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from cxslack.redact import redact
from cxslack.sandbox import SlackSandbox
from cxslack.slack.client import RetryPolicy, SlackAccess, SlackError, header

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
