"""Case notifications in Slack: one root message per (Case, connector), updates per reply mode.

The (Case, connector) → (channel, root ts) map lives in the state dir. Every message carries
Slack message metadata (event type and Case id); if cxslack dies between posting a root and
saving the map, the next notify finds the root in the channel's history instead of posting a
second one. A per-(Case, connector) file lock makes concurrent notifies take turns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxslack.cases.model import (
    ROOT_EVENT,
    UPDATE_EVENT,
    CaseEvent,
    ReplyMode,
    case_key,
    case_name,
    template_context,
)
from cxslack.connectors import Connector, EntityType
from cxslack.model import utc_now
from cxslack.slack.messages import case_root_message, case_update_message
from cxslack.store import atomic_write, ensure_private_dir


# -- state: thread map, per-Case settings, locks -----------------------------------------------
class CaseState:
    """Files under state/cases: threads.json, settings.json, locks/ — small, atomic, locked."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "cases"

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        ensure_private_dir(self.dir / "locks")
        fd = os.open(self.dir / "locks" / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, name: str) -> dict[str, Any]:
        try:
            doc = json.loads((self.dir / name).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _update(self, name: str, key: str, value: dict[str, Any] | None) -> None:
        with self._locked(name + ".lock"):
            doc = self._read(name)
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
            ensure_private_dir(self.dir)
            atomic_write(self.dir / name, json.dumps(doc, indent=1, sort_keys=True).encode())

    # threads: "<case>|<connector>" → {channel, ts, integration, case, updated}, or
    # {pending: true, channels} while a root post is in flight (what a crash leaves behind)
    def thread(self, case: str, connector: str) -> dict[str, Any] | None:
        return self._read("threads.json").get(f"{case}|{connector}")

    def save_thread(self, case: str, connector: str, record: dict[str, Any]) -> None:
        self._update("threads.json", f"{case}|{connector}", {**record, "updated": utc_now()})

    def threads_of(self, case: str) -> list[dict[str, Any]]:
        return [
            {"connector": k.split("|", 1)[1], **v}
            for k, v in self._read("threads.json").items()
            if k.startswith(case + "|") and not v.get("pending")
        ]

    def all_threads(self) -> dict[str, dict[str, Any]]:
        return self._read("threads.json")

    # settings: case id or readable id → {reply_mode, mute_sync}
    def settings(self, case: dict[str, Any]) -> dict[str, Any]:
        doc = self._read("settings.json")
        merged: dict[str, Any] = {}
        for key in (case.get("readableId"), case.get("id")):
            if key and isinstance(doc.get(str(key)), dict):
                merged.update(doc[str(key)])
        return merged

    def save_settings(self, case_ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._locked("settings.json.lock"):
            doc = self._read("settings.json")
            current = {**doc.get(case_ref, {}), **changes}
            doc[case_ref] = current
            ensure_private_dir(self.dir)
            atomic_write(self.dir / "settings.json", json.dumps(doc, indent=1, sort_keys=True).encode())
        return current

    @contextmanager
    def turn(self, case: str, connector: str) -> Iterator[None]:
        """One notify at a time per (Case, connector), across processes."""
        digest = hashlib.sha256(f"{case}|{connector}".encode()).hexdigest()[:24]
        with self._locked(f"{digest}.lock"):
            yield


@dataclass
class NotifyResult:
    case: str
    connector: str
    channel: str
    ts: str
    root_ts: str
    action: str  # root | reply | new-message
    reply_mode: str
    root_updated: bool
    fallback_used: bool = False
    recovered_root: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class CaseNotifier:
    """Posts a Case's notifications for one connector through its integration."""

    def __init__(self, registry: Any, connector: Connector, deliverer: Any):
        self.registry = registry
        self.connector = connector
        self.deliverer = deliverer
        self.state = CaseState(registry.store.ensure_state_dir())

    def reply_mode(self, case: dict[str, Any]) -> ReplyMode:
        mode = (
            self.state.settings(case).get("reply_mode")
            or self.connector.case_reply_mode
            or ReplyMode.THREAD.value
        )
        return ReplyMode(mode)

    def notify(self, case: dict[str, Any], event: CaseEvent, link: str | None) -> NotifyResult:
        from cxslack.delivery import resolve_channel

        key = case_key(case)
        mode = self.reply_mode(case)
        with self.state.turn(key, self.connector.id):
            thread = self.state.thread(key, self.connector.id)
            recovered = False
            if thread is not None and thread.get("pending"):
                # A root post was in flight when cxslack last died: adopt it if it landed.
                thread = self._find_root(key, thread.get("channels", []))
                recovered = thread is not None
                if thread is not None:
                    self.state.save_thread(key, self.connector.id, thread)
            channel = (
                thread["channel"]
                if thread
                else resolve_channel(self.connector, EntityType.CASES, template_context(case, event)).channel
            )
            if thread is None:
                self.state.save_thread(
                    key,
                    self.connector.id,
                    {"pending": True, "channels": [channel, self.connector.fallback_channel]},
                )
            if thread is None or mode is ReplyMode.NEW_MESSAGE:
                kind = ROOT_EVENT if thread is None else UPDATE_EVENT  # only the first card is the root
                body, used_fallback = self._post_root(case, event, link, channel, kind)
                if thread is None:
                    thread = {"channel": body["channel"], "ts": body["ts"], "integration": self.deliverer.integration.id,
                              "case": case_name(case)}  # fmt: skip
                    self.state.save_thread(key, self.connector.id, thread)
                    return NotifyResult(case_name(case), self.connector.id, body["channel"], body["ts"], body["ts"],
                                        "root", mode.value, False, used_fallback)  # fmt: skip
                posted_ts, action = body["ts"], "new-message"
                posted_channel = body["channel"]
            else:
                text, blocks = case_update_message(case, event)
                body = self.deliverer.post(
                    thread["channel"], text, blocks, thread_ts=thread["ts"],
                    reply_broadcast=mode is ReplyMode.THREAD_BROADCAST or None,
                    metadata=self._metadata(UPDATE_EVENT, key, event),
                )  # fmt: skip
                posted_ts, action, posted_channel = body["ts"], "reply", thread["channel"]
            root_updated = self._refresh_root(case, thread, link)
            self.state.save_thread(key, self.connector.id, thread)
            return NotifyResult(case_name(case), self.connector.id, posted_channel, posted_ts, thread["ts"], action,
                                mode.value, root_updated, recovered_root=recovered)  # fmt: skip

    def _metadata(self, event_type: str, key: str, event: CaseEvent) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "event_payload": {"case_id": key, "connector": self.connector.id, "event": event.value},
        }

    def _post_root(self, case: dict[str, Any], event: CaseEvent, link: str | None, channel: str,
                   kind: str) -> tuple[dict[str, Any], bool]:  # fmt: skip
        from cxslack.slack.client import SlackError

        text, blocks = case_root_message(case, link)
        metadata = self._metadata(kind, case_key(case), event)
        try:
            return self.deliverer.post(channel, text, blocks, metadata=metadata), False
        except SlackError as exc:
            if exc.token_invalid or channel == self.connector.fallback_channel:
                raise
            return self.deliverer.post(self.connector.fallback_channel, text, blocks, metadata=metadata), True

    def _refresh_root(self, case: dict[str, Any], thread: dict[str, Any], link: str | None) -> bool:
        """Edit the root in place so it always shows the Case's current status and priority."""
        from cxslack.slack.client import SlackError

        text, blocks = case_root_message(case, link)
        access = self.deliverer.access
        if access is None:
            return False
        try:
            access.call("chat.update", channel=thread["channel"], ts=thread["ts"], text=text, blocks=blocks)
        except SlackError as exc:
            if exc.code in {"message_not_found", "cant_update_message"}:
                return False
            raise
        return True

    def _find_root(self, key: str, channels: list[str]) -> dict[str, Any] | None:
        """A root posted just before a crash, found by its metadata in the channel's history."""
        from cxslack.slack.client import SlackError

        access = self.deliverer.access
        if access is None:
            return None
        for channel in channels:
            try:
                channel_id = access.channel_id(channel)
                if channel_id is None:
                    continue
                body, _ = access.call(
                    "conversations.history", channel=channel_id, limit=200, include_all_metadata=True
                )
            except SlackError:
                continue  # no history scope or no access: then a crash in that window can repeat the root
            for message in body.get("messages", []):
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if (
                    meta.get("event_type") == ROOT_EVENT
                    and payload.get("case_id") == key
                    and payload.get("connector") == self.connector.id
                ):
                    return {
                        "channel": channel_id,
                        "ts": message["ts"],
                        "integration": self.deliverer.integration.id,
                    }
        return None
