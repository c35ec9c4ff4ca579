"""Secrets in the PostgreSQL state are sealed: the raw rows of every table hold no token, no
verification token, no response_url; a key that is not the database's is a clear error (never a
traceback, never the ciphertext or the key); `state migrate` encrypts rows an older cxslack stored
in plain text, re-encrypts with CXSLACK_STATE_PREVIOUS_KEY after the key changed, and forgets what a
lost key sealed with --reset-key; a value changed in the database or moved to another row is refused.
Against the real throwaway server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from cxslack.state import open_state, use_state_url
from cxslack.state.interface import Accepted, Outcome
from cxslack.store import Store
from tests.conftest import Cli, install, run_process
from tests.postgres_fixture import PostgresServer, assert_nowhere, every_stored_value

NEVER = lambda: False  # noqa: E731  (head's `interrupted`)
KEY_A = "state-key-A-0123456789abcdefghijklmnop"
KEY_B = "state-key-B-0123456789abcdefghijklmnop"
KEY_C = "state-key-C-0123456789abcdefghijklmnop"
BOT = "xoxe.xoxb-sealed-bot-token-0123456789"
BOT_REFRESH = "xoxe-sealed-refresh-0123456789abcdef"
VERIFICATION = "legacy-verification-token-QwErTy"
RESPONSE_URL = "https://hooks.slack.com/actions/T0SEAL/1234567890/rEsPoNsEuRlSeCrEt"
TRIGGER = "1234567890.111.triggerSEALED"


def sealed_count(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as connection:
        tokens = connection.execute("SELECT count(*) FROM cxslack_slack_tokens").fetchone()
        envelopes = connection.execute("SELECT count(envelope) FROM cxslack_events").fetchone()
    assert tokens is not None and envelopes is not None
    return {"tokens": tokens[0], "envelopes": envelopes[0]}


def click(n: int) -> dict[str, Any]:
    """A Case-button click as `listen` keeps it: Slack's payload carries the verification token, a
    response_url and a trigger_id."""
    return {
        "type": "block_actions",
        "event_id": f"EvCLICK{n:04d}",
        "received_at": 1700000000.5,
        "payload": {
            "type": "block_actions",
            "token": VERIFICATION,
            "response_url": f"{RESPONSE_URL}{n}",
            "trigger_id": f"{TRIGGER}{n}",
            "container": {"type": "message", "channel_id": "C0CASES", "message_ts": "1700000000.000100"},
            "actions": [{"action_id": "cxslack_case_acknowledge", "type": "button"}],
        },
    }


def message_event(n: int) -> dict[str, Any]:
    return {
        "token": VERIFICATION,  # the Events API's (deprecated) verification token, in every envelope
        "type": "event_callback",
        "event_id": f"EvMSG{n:04d}",
        "event": {"type": "message", "channel": "C0CASES", "ts": f"1700000001.{n:06d}", "text": "hi"},
    }


def rotating(access: str = BOT, refresh: str = BOT_REFRESH, expires_in: int = 40000) -> Any:
    from cxslack.credentials import IntegrationSecrets, TokenSet

    return IntegrationSecrets(bot=TokenSet(access, refresh, int(time.time()) + expires_in, ["chat:write"]))


def keep_locally(integration_id: str, secrets: Any) -> None:
    from cxslack.credentials import write_secrets

    with Store().transaction() as docs:
        write_secrets(docs, integration_id, secrets)


LOCAL = ("xoxe.xoxb-local-token-00000000000", "xoxe-local-refresh-000000000")


def sealed_with(key: str, monkeypatch: pytest.MonkeyPatch, url: str, *clicks: int) -> None:
    """Under `key`: older rotating tokens in credentials.toml, newer ones installed in the database,
    and `clicks` waiting in its inbox."""
    monkeypatch.setenv("CXSLACK_STATE_KEY", key)
    keep_locally("int-1", rotating(*LOCAL, 3000))
    with use_state_url(url):
        state = open_state(Store())
        state.tokens.installed("int-1", rotating())
        inbox = state.open_inbox()
        try:
            for n in clicks:
                assert inbox.accept(click(n)) is Accepted.STORED
        finally:
            inbox.close()


def first_waiting(url: str) -> dict[str, Any]:
    """The envelope of the first event waiting in the database's inbox, opened (it stays waiting)."""
    with use_state_url(url):
        inbox = open_state(Store()).open_inbox()
        try:
            waiting = inbox.head(2, NEVER)
            assert waiting is not None
            envelope = waiting.envelope()
            inbox.release(waiting)
        finally:
            inbox.close()
    return envelope


# -- what the database holds -----------------------------------------------------------------------
def test_tokens_envelopes_and_dead_letters_are_stored_encrypted(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXSLACK_STATE_KEY", KEY_A)
    keep_locally(
        "int-1", rotating("xoxe.xoxb-older-local-token-000000", "xoxe-older-local-refresh-00000", 3000)
    )
    with use_state_url(pg_url):
        state = open_state(Store())
        state.tokens.installed("int-1", rotating())
        inbox = state.open_inbox()
        try:
            assert inbox.accept(click(1)) is Accepted.STORED
            assert inbox.accept(message_event(2), json.dumps(message_event(2)).encode()) is Accepted.STORED
            assert inbox.accept(click(1)) is Accepted.DUPLICATE  # dedupe needs no decryption
            assert sealed_count(pg_url) == {"tokens": 1, "envelopes": 2}
            assert_nowhere(pg_url, BOT, BOT_REFRESH, VERIFICATION, RESPONSE_URL, TRIGGER)

            first = inbox.head(2, NEVER)
            assert first is not None and first.envelope() == click(1)  # opened as it was received
            inbox.finish(first, Outcome.DEAD_LETTER, "boom")  # a dead letter keeps its envelope, sealed
            second = inbox.head(2, NEVER)
            assert second is not None and second.envelope() == message_event(2)
            inbox.finish(second, Outcome.HANDLED)
        finally:
            inbox.close()
        assert sealed_count(pg_url) == {"tokens": 1, "envelopes": 1}
        assert_nowhere(pg_url, BOT, BOT_REFRESH, VERIFICATION, RESPONSE_URL, TRIGGER)
        current = state.tokens.current("int-1").bot
        assert current is not None and (current.access_token, current.refresh_token) == (BOT, BOT_REFRESH)


def test_state_copy_seals_the_envelopes_it_moves(
    cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxslack.state.inbox import Inbox

    inbox = Inbox(Store().paths.state_dir / "events")
    for n in (1, 2):
        inbox.accept(click(n))
    dead = inbox.head(1, NEVER)
    assert dead is not None
    inbox.finish(dead, Outcome.DEAD_LETTER, "boom")
    inbox.close()

    refused = cli("state", "copy", "--to", pg_url)  # no client secret, no CXSLACK_STATE_KEY: no key
    assert refused.exit_code == 1 and "no key" in refused.stderr and "CXSLACK_STATE_KEY" in refused.stderr
    assert sealed_count(pg_url)["envelopes"] == 0  # nothing half-copied
    monkeypatch.setenv("CXSLACK_STATE_KEY", KEY_A)
    parts = cli.ok("state", "copy", "--to", pg_url, "-o", "json").json()["parts"]
    assert (parts["events_waiting"]["copied"], parts["dead_letters"]["copied"]) == (1, 1)
    assert sealed_count(pg_url)["envelopes"] == 2
    assert_nowhere(pg_url, VERIFICATION, RESPONSE_URL, TRIGGER)
    assert first_waiting(pg_url) == click(2)


# -- keys: the wrong one, a rotation, a lost one ---------------------------------------------------
def test_a_regenerated_client_secret_is_a_clear_error_until_state_migrate_re_encrypts(
    cli: Cli, cx: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default key comes from the Slack app's client secret: a replica with another one refuses
    to start and a command refuses to read the tokens, saying what to run; with the previous
    secret as CXSLACK_STATE_PREVIOUS_KEY, `state migrate` re-encrypts everything with the new one."""
    from cxslack.sandbox import CLIENT_SECRET
    from cxslack.sandbox.events import SIGNING_SECRET

    monkeypatch.setenv("CXSLACK_STATE_URL", pg_url)
    httpx.post(
        f"{cx.url}/_sandbox/settings", json={"token_rotation": True, "expires_in": 300}
    ).raise_for_status()
    created = install(cli, cx, "Payments", "--two-way-sync")
    installed = Store().read_credentials()["integrations"][created["id"]]["bot"]
    httpx.post(f"{cx.url}/_sandbox/settings", json={"expires_in": 43200}).raise_for_status()
    cli.ok("connectors", "create", "On-call", "--integration", "payments", "--channel", "payments-alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    cli.ok("cases", "notify", "CASE-1", "--connector", "on-call")  # refreshes the 5-minute token first
    refreshed = Store().read_credentials()["integrations"][created["id"]]["bot"]
    assert refreshed["access_token"] != installed["access_token"]
    assert sealed_count(pg_url)["tokens"] == 1
    assert_nowhere(pg_url, installed["access_token"], installed["refresh_token"],
                   refreshed["access_token"], refreshed["refresh_token"])  # fmt: skip

    new_secret = "regenerated-client-secret-0123456789abcdef"
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_SECRET", new_secret)
    refused = cli("cases", "notify", "CASE-2", "--connector", "on-call")
    assert refused.exit_code == 1 and "encrypted with key" in refused.stderr
    assert "CXSLACK_STATE_PREVIOUS_KEY" in refused.stderr and "state migrate" in refused.stderr
    replica = run_process("listen", "--http", "127.0.0.1:0", env={"CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET},
                          timeout=30)  # fmt: skip
    assert (
        replica.exit_code == 1
        and "encrypted with key" in replica.stderr
        and "Listening" not in replica.stderr
    )
    ciphertexts = [
        value[25:41].hex() for where, value in every_stored_value(pg_url) if where.endswith("_token")
    ]
    for run in (refused, replica):
        assert (
            "Traceback" not in run.stderr and new_secret not in run.stderr and CLIENT_SECRET not in run.stderr
        )
        assert ciphertexts and not any(c in run.stderr + run.stdout for c in ciphertexts)

    monkeypatch.setenv("CXSLACK_STATE_PREVIOUS_KEY", CLIENT_SECRET)
    migrated = cli.ok("state", "migrate", "-o", "json").json()["secrets"]
    assert migrated["resealed"] == 2 and migrated["sealed"] == 0  # the access and the refresh token
    again = cli.ok("state", "migrate", "-o", "json").json()["secrets"]
    assert (again["resealed"], again["sealed"], again["key"]) == (0, 0, migrated["key"])
    monkeypatch.delenv("CXSLACK_STATE_PREVIOUS_KEY")
    cli.ok("cases", "notify", "CASE-2", "--connector", "on-call")  # works with the new secret alone
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    stale = cli("cases", "notify", "CASE-3", "--connector", "on-call")  # a replica still on the old one
    assert stale.exit_code == 1 and "encrypted with key" in stale.stderr and "Traceback" not in stale.stderr


def test_a_lost_key_is_reset_forgetting_only_what_it_sealed(
    cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    sealed_with(KEY_A, monkeypatch, pg_url, 1)
    monkeypatch.setenv("CXSLACK_STATE_KEY", KEY_C)  # KEY_A is lost
    refused = cli("state", "migrate", "--state-url", pg_url)
    assert refused.exit_code == 1 and "--reset-key" in refused.stderr and KEY_C not in refused.stderr
    reset = cli.ok("state", "migrate", "--state-url", pg_url, "--reset-key", "-o", "json").json()["secrets"]
    assert reset["forgotten"] == 2  # the token row and the waiting event
    with psycopg.connect(pg_url) as connection:
        assert connection.execute("SELECT count(*) FROM cxslack_slack_tokens").fetchone() == (0,)
        state_, error = connection.execute("SELECT state, error FROM cxslack_events").fetchone() or ("", "")
    assert state_ == "dead-letter" and "reset-key" in error
    with use_state_url(pg_url):  # the tokens come from credentials.toml again
        bot = open_state(Store()).tokens.current("int-1").bot
        assert bot is not None and bot.access_token == LOCAL[0]


def test_a_short_key_and_no_key_are_refused(cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack.sandbox.events import SIGNING_SECRET

    env = {"CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}
    missing = run_process("listen", "--http", "127.0.0.1:0", "--state-url", pg_url, env=env, timeout=30)
    assert missing.exit_code == 1 and "no key" in missing.stderr and "cxslack app configure" in missing.stderr
    short = run_process("listen", "--http", "127.0.0.1:0", "--state-url", pg_url,
                        env={**env, "CXSLACK_STATE_KEY": "too-short-a-key"}, timeout=30)  # fmt: skip
    assert short.exit_code == 1 and "at least 32" in short.stderr and "too-short-a-key" not in short.stderr
    assert "Traceback" not in missing.stderr + short.stderr


# -- values changed in the database ----------------------------------------------------------------
def test_a_value_changed_or_moved_in_the_database_is_refused(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from cxslack.errors import CxError

    sealed_with(KEY_A, monkeypatch, pg_url, 1, 2)
    with psycopg.connect(pg_url, autocommit=True) as connection:
        # one event's sealed envelope put in another's row; a token's last byte flipped
        connection.execute("""UPDATE cxslack_events SET envelope =
            (SELECT envelope FROM cxslack_events WHERE event_id = 'EvCLICK0002') WHERE event_id = 'EvCLICK0001'""")
        connection.execute("""UPDATE cxslack_slack_tokens SET access_token = set_byte(access_token,
            length(access_token) - 1, get_byte(access_token, length(access_token) - 1) # 1)""")
    with use_state_url(pg_url):
        state = open_state(Store())
        inbox = state.open_inbox()
        try:
            moved = inbox.head(2, NEVER)
            assert moved is not None and moved.event_id == "EvCLICK0001"
            with pytest.raises(ValueError, match="cannot be decrypted"):
                moved.envelope()  # the worker dead-letters it: never acted on
            inbox.finish(moved, Outcome.DEAD_LETTER, "unreadable")
            kept = inbox.head(2, NEVER)
            assert kept is not None and kept.envelope() == click(2)
            inbox.release(kept)
        finally:
            inbox.close()
        with pytest.raises(CxError) as refused:
            state.tokens.current("int-1")
    assert "cannot be decrypted" in refused.value.message and "authorize" in str(refused.value.hint)


# -- rows from before sealing -----------------------------------------------------------------------
def test_state_migrate_encrypts_rows_stored_in_plain_text_once(
    cli: Cli, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from cxslack.state.postgres.db import Database
    from cxslack.state.postgres.schema import LATEST, current_version, migrate

    url = postgres.new_database()
    db = Database(url)
    try:
        migrate(db, upto=6)  # the schema before sealing, as an older cxslack left it
    finally:
        db.close()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("""INSERT INTO cxslack_slack_tokens (integration_id, kind, access_token, refresh_token,
            expires_at, scopes) VALUES ('int-1', 'bot', %s, %s, %s, ARRAY['chat:write'])""",
                           [BOT, BOT_REFRESH, int(time.time()) + 40000])  # fmt: skip
        connection.execute(
            """INSERT INTO cxslack_events (event_id, order_key, envelope, received_by)
            VALUES ('EvCLICK0001', 'C0CASES|1700000000.000100', %s, 'older')""",
            [json.dumps(click(1)).encode()],
        )
        connection.execute(
            """INSERT INTO cxslack_events (event_id, order_key, state, envelope, finished_at, error)
            VALUES ('EvMSG0002', 'C0CASES', 'dead-letter', %s, now(), 'boom')""",
            [json.dumps(message_event(2)).encode()],
        )
    keep_locally("int-1", rotating(*LOCAL, 3000))

    refused = cli("state", "migrate", "--state-url", url)  # no key on this machine: nothing changes
    assert refused.exit_code == 1 and "no key" in refused.stderr and "Traceback" not in refused.stderr
    with psycopg.connect(url) as connection:
        assert current_version(connection) == 6
    monkeypatch.setenv("CXSLACK_STATE_KEY", KEY_B)
    first = cli.ok("state", "migrate", "--state-url", url, "-o", "json").json()
    assert first["after"] == LATEST and first["secrets"]["sealed"] == 4  # two tokens, two envelopes
    assert_nowhere(url, BOT, BOT_REFRESH, VERIFICATION, RESPONSE_URL, TRIGGER)
    second = cli.ok("state", "migrate", "--state-url", url, "-o", "json").json()
    assert second["applied"] == [] and second["secrets"] == {**first["secrets"], "sealed": 0}
    assert "nothing to do" in cli.ok("state", "migrate", "--state-url", url).stderr

    with use_state_url(url):
        bot = open_state(Store()).tokens.current("int-1").bot
        assert bot is not None and (bot.access_token, bot.refresh_token) == (BOT, BOT_REFRESH)
    assert first_waiting(url) == click(1)
