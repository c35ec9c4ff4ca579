"""Secrets: the Slack app's client credentials and each integration's tokens.

Secrets live only in credentials.toml (0600). Everything read from it is registered with the
redactor, so a token that slips into a message is masked on the way out.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from cxslack.errors import UsageError
from cxslack.redact import register_secret
from cxslack.store import Documents, Store

# Refresh a rotating token when it is this close to expiry (seconds).
REFRESH_MARGIN = 600


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: int | None = None  # epoch seconds; None for tokens that do not expire
    scopes: list[str] | None = None

    def expiring(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at - (now or time.time()) < REFRESH_MARGIN

    def to_toml(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scopes": self.scopes,
        }

    @classmethod
    def from_toml(cls, doc: Any) -> TokenSet | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            return None
        tokens = cls(
            access_token=doc["access_token"],
            refresh_token=doc.get("refresh_token") if isinstance(doc.get("refresh_token"), str) else None,
            expires_at=doc.get("expires_at") if isinstance(doc.get("expires_at"), int) else None,
            scopes=[s for s in doc.get("scopes", []) if isinstance(s, str)] or None,
        )
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        return tokens


@dataclass
class IntegrationSecrets:
    bot: TokenSet | None = None
    user: TokenSet | None = None
    webhook_url: str | None = None  # earlier-version integrations may deliver via an incoming webhook

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.bot:
            doc["bot"] = self.bot.to_toml()
        if self.user:
            doc["user"] = self.user.to_toml()
        if self.webhook_url:
            doc["webhook_url"] = self.webhook_url
        return doc

    @classmethod
    def from_toml(cls, doc: Any) -> IntegrationSecrets:
        if not isinstance(doc, dict):
            return cls()
        webhook = doc.get("webhook_url") if isinstance(doc.get("webhook_url"), str) else None
        register_secret(webhook)
        return cls(
            bot=TokenSet.from_toml(doc.get("bot")),
            user=TokenSet.from_toml(doc.get("user")),
            webhook_url=webhook,
        )


def read_secrets(docs_or_store: Documents | Store, integration_id: str) -> IntegrationSecrets:
    creds = (
        docs_or_store.credentials
        if isinstance(docs_or_store, Documents)
        else docs_or_store.read_credentials()
    )
    table = creds.get("integrations", {})
    return IntegrationSecrets.from_toml(table.get(integration_id) if isinstance(table, dict) else None)


def write_secrets(docs: Documents, integration_id: str, secrets: IntegrationSecrets) -> None:
    table = docs.credentials.setdefault("integrations", {})
    table[integration_id] = secrets.to_toml()


@dataclass
class AppCredentials:
    client_id: str
    client_secret: str | None  # None for a PKCE (public client) app


def app_settings(store: Store) -> dict[str, Any]:
    app = store.read_config().get("app", {})
    return app if isinstance(app, dict) else {}


def client_secret(store: Store) -> tuple[str | None, str]:
    """The Slack app's client secret (None for a PKCE app, or none configured) and where it is
    from: CXSLACK_SLACK_CLIENT_SECRET first, then credentials.toml."""
    secret = os.environ.get(CLIENT_SECRET_ENV)
    if secret:
        register_secret(secret)
        return secret, CLIENT_SECRET_ENV
    app_secrets = store.read_credentials().get("app", {})
    stored = app_secrets.get("client_secret") if isinstance(app_secrets, dict) else None
    register_secret(stored if isinstance(stored, str) else None)
    return (stored if isinstance(stored, str) and stored else None), str(store.paths.credentials_file)


CLIENT_SECRET_ENV = "CXSLACK_SLACK_CLIENT_SECRET"


def app_credentials(store: Store, *, need_secret: bool = True) -> AppCredentials:
    """The Slack app's client id and secret: environment first, then cxslack's own store."""
    settings = app_settings(store)
    client_id = os.environ.get("CXSLACK_SLACK_CLIENT_ID") or settings.get("client_id")
    secret, _ = client_secret(store)
    if not client_id:
        raise UsageError(
            "app_not_configured",
            "the Slack app's client id is not configured",
            "Run: cxslack app configure (or set CXSLACK_SLACK_CLIENT_ID and CXSLACK_SLACK_CLIENT_SECRET)",
        )
    if need_secret and not secret:
        raise UsageError(
            "app_not_configured",
            "the Slack app's client secret is not configured",
            "Run: cxslack app configure (or set CXSLACK_SLACK_CLIENT_SECRET); PKCE apps use --pkce instead",
        )
    return AppCredentials(client_id=str(client_id), client_secret=secret)
