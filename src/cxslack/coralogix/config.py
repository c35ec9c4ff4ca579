"""Where the Coralogix account lives: the region's API and ingress hosts, and the keys.

Resolution follows Coralogix's own `cx` CLI, so environments set up for it just work:
flags > environment (CX_API_KEY, CX_REGION, CX_PROFILE, CX_SEND_KEY, CX_TEAM_ID) > cxslack's own
config (`cxslack coralogix configure`: region and team id in config.toml, keys in
credentials.toml) > the cx profile (~/.cx/profiles/<name>.toml). The team id is the Coralogix
team whose members Slack users are matched to (team-members API `/aaa/teams/v2/{team_id}/…`).
CXSLACK_CORALOGIX_API_URL and CXSLACK_CORALOGIX_INGRESS_URL override the hosts (sandbox, tests).
Nothing here talks to the network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from cxslack.errors import AuthError, ConfigError, UsageError
from cxslack.redact import register_secret
from cxslack.store import Store, read_toml


class Hosts(NamedTuple):
    api_url: str
    ingress_url: str


# The management API hosts are the `servers` of Coralogix's published OpenAPI v5 (cases.yaml,
# notification-center.yaml, alerts-integrations.yaml and team-members.yaml all list the same seven;
# AP1 is `api.coralogix.in` there, where older docs said `api.app.coralogix.in`). The spec lists no
# US3 server; US3 is the reference's `api.us3.coralogix.com`. Ingress hosts are `ingress.<domain>`.
REGIONS: dict[str, Hosts] = {
    "eu1": Hosts("https://api.coralogix.com", "https://ingress.coralogix.com"),
    "eu2": Hosts("https://api.eu2.coralogix.com", "https://ingress.eu2.coralogix.com"),
    "us1": Hosts("https://api.coralogix.us", "https://ingress.coralogix.us"),
    "us2": Hosts("https://api.cx498.coralogix.com", "https://ingress.cx498.coralogix.com"),
    "us3": Hosts("https://api.us3.coralogix.com", "https://ingress.us3.coralogix.com"),
    "ap1": Hosts("https://api.coralogix.in", "https://ingress.coralogix.in"),
    "ap2": Hosts("https://api.coralogixsg.com", "https://ingress.coralogixsg.com"),
    "ap3": Hosts("https://api.ap3.coralogix.com", "https://ingress.ap3.coralogix.com"),
}
API_URL_ENV = "CXSLACK_CORALOGIX_API_URL"
INGRESS_URL_ENV = "CXSLACK_CORALOGIX_INGRESS_URL"
KEY_HINT = "cxslack coralogix configure, or set CX_API_KEY"
SEND_KEY_HINT = "cxslack coralogix configure --send-key-stdin, or set CX_SEND_KEY"
REGION_HINT = f"cxslack coralogix configure --region REGION ({' '.join(REGIONS)}), or set CX_REGION"
TEAM_ID_HINT = "cxslack coralogix configure --team-id ID, or set CX_TEAM_ID"
# The team-members API types team_id as int64; a team id is positive.
TEAM_ID_MAX = 2**63 - 1
NOT_SET = "not set"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def normalize_region(value: str, origin: str = "--region") -> str:
    """A region name in lower case, or a custom environment's https URL without a trailing slash."""
    text = value.strip()
    if text.lower() in REGIONS:
        return text.lower()
    parts = urlsplit(text)
    if parts.scheme.lower() == "https" and parts.hostname and not (parts.query or parts.fragment):
        return text.rstrip("/")
    raise UsageError(
        "coralogix_region_invalid",
        f"unknown Coralogix region {text!r} (from {origin})",
        f"Use one of {', '.join(REGIONS)}, or a full https:// URL for a custom environment.",
    )


def normalize_team_id(value: str | int, origin: str = "--team-id") -> int:
    """A Coralogix team id: a positive int64, as the team-members API types it."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= TEAM_ID_MAX:
        raise UsageError(
            "invalid_team_id",
            f"the Coralogix team id must be a positive number, not {text[:40]!r} (from {origin})",
            "Use your Coralogix team's numeric id (from Coralogix's settings), such as 12345.",
        )
    return int(text)


def region_hosts(region: str, origin: str = "--region") -> Hosts:
    """The API and ingress base URLs of a region, or of a custom environment's API URL."""
    region = normalize_region(region, origin)
    if region in REGIONS:
        return REGIONS[region]
    # A custom environment's API host is api.<domain>; its ingress is ingress.<domain> beside it.
    parts = urlsplit(region)
    netloc = parts.netloc.removeprefix("api.")
    return Hosts(region, f"https://ingress.{netloc}")


def _base_url(
    env: Mapping[str, str], env_name: str, default: str | None, region: str | None
) -> tuple[str | None, str]:
    """An http(s) override from the environment (sandbox, tests), else the region's URL."""
    override = env.get(env_name)
    if not override:
        return default, f"region {region}" if default else NOT_SET
    parts = urlsplit(override)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError("invalid_url", f"{env_name} must be an http(s) URL, not {override!r}")
    return override.rstrip("/"), f"env {env_name}"


@dataclass(frozen=True)
class CoralogixSettings:
    """The resolved connection. Keys stay out of repr; `origins` says where each value came from."""

    api_url: str | None
    ingress_url: str | None
    api_key: str | None = field(repr=False)
    send_key: str | None = field(repr=False)
    region: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict)
    cx_profile: CxProfile | None = field(default=None, repr=False)
    team_id: int | None = None  # the Coralogix team Slack users are matched against

    def team(self) -> int:
        """The team id, or the error saying how to set it."""
        if self.team_id is None:
            raise UsageError("coralogix_team_missing", "no Coralogix team id is configured", TEAM_ID_HINT)
        return self.team_id

    @property
    def source(self) -> str:
        """Where the API key came from (never the key itself)."""
        return self.origins.get("api_key", NOT_SET)

    def management(self) -> tuple[str, str]:
        """(API base URL, API key) for the Cases API, or the error saying what to configure."""
        if not self.api_key:
            note = self.cx_profile.key_note() if self.cx_profile else None
            raise AuthError(
                "coralogix_key_missing",
                f"no Coralogix API key{f': {note}' if note else ' is configured'}",
                KEY_HINT,
            )
        return self._require_url(self.api_url), self.api_key

    def ingestion(self) -> tuple[str, str]:
        """(ingress base URL, Send-Your-Data key) for log ingestion."""
        if not self.send_key:
            raise AuthError(
                "coralogix_send_key_missing", "no Coralogix Send-Your-Data key is configured", SEND_KEY_HINT
            )
        return self._require_url(self.ingress_url), self.send_key

    @staticmethod
    def _require_url(url: str | None) -> str:
        if not url:
            raise UsageError("coralogix_region_missing", "no Coralogix region is configured", REGION_HINT)
        return url


class CxProfile:
    """A profile of Coralogix's `cx` CLI, read only when a value falls through to it."""

    def __init__(self, name: str, *, explicit: bool, home: Path | None = None):
        if not _PROFILE_NAME.fullmatch(name):
            raise UsageError("invalid_profile", f"invalid cx profile name {name!r}")
        self.name = name
        self.explicit = explicit  # named by --profile, CX_PROFILE or cxslack's config, so it must exist
        self.path = (home or Path.home()) / ".cx" / "profiles" / f"{name}.toml"
        self._doc: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"cx profile {self.name} ({self.path})"

    def get(self, key: str) -> Any:
        if self._doc is None:
            if self.path.is_file():
                self._doc = read_toml(self.path)
            elif self.explicit:
                raise UsageError(
                    "cx_profile_not_found",
                    f"cx profile {self.name!r} does not exist ({self.path})",
                    "Fix CX_PROFILE or --profile, create the profile with `cx`, "
                    "or run: cxslack coralogix configure",
                )
            else:
                self._doc = {}
        return self._doc.get(key)

    def key_note(self) -> str | None:
        """Why a profile that exists has no key cxslack can use (cx keeps some keys elsewhere)."""
        if self._doc is None or self._doc.get("api_key"):
            return None
        if self._doc.get("auth") == "oauth":
            return f"{self.label} signs in with OAuth, which cxslack cannot use"
        if self._doc.get("credential_storage") == "os_store":
            return f"{self.label} keeps its key in the OS credential store, which cxslack does not read"
        return None


Candidate = tuple[str, Any]  # (where it comes from, a value or a zero-argument callable giving one)


def _first(name: str, *candidates: Candidate) -> tuple[str | None, str]:
    """The first non-empty value and its origin; callables run only when reached (lazy cx profile)."""
    for origin, candidate in candidates:
        value = candidate() if callable(candidate) else candidate
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ConfigError("config_invalid", f"{origin}: {name} must be a string")
        if value.strip():
            return value.strip(), origin
    return None, NOT_SET


def _table(doc: Mapping[str, Any], origin: str) -> Mapping[str, Any]:
    table = doc.get("coralogix", {})
    if not isinstance(table, dict):
        raise ConfigError("config_invalid", f"{origin}: [coralogix] must be a table")
    return table


def resolve_settings(
    *,
    region: str | None = None,
    profile: str | None = None,
    api_key: str | None = None,
    send_key: str | None = None,
    team_id: str | None = None,
    store: Store | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> CoralogixSettings:
    """Resolve the connection: arguments (the flags) > environment > cxslack config > cx profile.

    Never raises for a missing key or region; `management()`/`ingestion()` do, when one is needed.
    """
    env = os.environ if environ is None else environ
    store = store or Store()
    config_origin = f"cxslack config ({store.paths.config_file})"
    creds_origin = f"cxslack credentials ({store.paths.credentials_file})"
    config = _table(store.read_config(), config_origin)
    creds = _table(store.read_credentials(), creds_origin)

    profile_name, profile_origin = _first(
        "profile",
        ("--profile", profile),
        ("env CX_PROFILE", env.get("CX_PROFILE")),
        (config_origin, config.get("profile")),
    )
    cx = CxProfile(profile_name or "default", explicit=profile_name is not None, home=home)

    region_value, region_origin = _first(
        "region",
        ("--region", region),
        ("env CX_REGION", env.get("CX_REGION")),
        (config_origin, config.get("region")),
        (cx.label, lambda: cx.get("region")),
    )
    key, key_origin = _first(
        "api_key",
        ("argument", api_key),
        ("env CX_API_KEY", env.get("CX_API_KEY")),
        (creds_origin, creds.get("api_key")),
        (cx.label, lambda: cx.get("api_key")),
    )
    send, send_origin = _first(
        "send_key",
        ("argument", send_key),
        ("env CX_SEND_KEY", env.get("CX_SEND_KEY")),
        (creds_origin, creds.get("send_key")),
    )
    stored_team = config.get("team_id")
    team_text, team_origin = _first(
        "team_id",
        ("--team-id", team_id),
        ("env CX_TEAM_ID", env.get("CX_TEAM_ID")),
        (config_origin, str(stored_team) if isinstance(stored_team, int) else stored_team),
    )
    for secret in (key, send, creds.get("api_key"), creds.get("send_key")):
        register_secret(secret if isinstance(secret, str) else None)

    hosts = None
    if region_value:
        region_value = normalize_region(region_value, region_origin)
        hosts = region_hosts(region_value)
    api_url, api_origin = _base_url(env, API_URL_ENV, hosts.api_url if hosts else None, region_value)
    ingress_url, ingress_origin = _base_url(
        env, INGRESS_URL_ENV, hosts.ingress_url if hosts else None, region_value
    )

    return CoralogixSettings(
        api_url=api_url,
        ingress_url=ingress_url,
        api_key=key,
        send_key=send,
        region=region_value,
        origins={
            "region": region_origin,
            "api_url": api_origin,
            "ingress_url": ingress_origin,
            "api_key": key_origin,
            "send_key": send_origin,
            "profile": profile_origin if profile_name else "default",
            "team_id": team_origin,
        },
        cx_profile=cx,
        team_id=normalize_team_id(team_text, team_origin) if team_text else None,
    )


@dataclass(frozen=True)
class StoredSettings:
    """What `cxslack coralogix configure` keeps: the region and profile, and whether keys are stored."""

    region: str | None
    profile: str | None
    api_key_stored: bool
    send_key_stored: bool
    team_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        hosts = region_hosts(self.region, "cxslack config") if self.region else None
        return {
            "region": self.region,
            "api_url": hosts.api_url if hosts else None,
            "ingress_url": hosts.ingress_url if hosts else None,
            "team_id": self.team_id,
            "profile": self.profile,
            "api_key": "stored" if self.api_key_stored else NOT_SET,
            "send_key": "stored" if self.send_key_stored else NOT_SET,
        }


def _secret(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise UsageError("invalid_secret", f"the {what} is empty or contains whitespace")
    register_secret(value)
    return value


def save_settings(
    store: Store,
    *,
    region: str | None = None,
    profile: str | None = None,
    api_key: str | None = None,
    send_key: str | None = None,
    team_id: str | None = None,
) -> StoredSettings:
    """Store what was given (None leaves a value as it is): region, team id and profile in
    config.toml, keys only in credentials.toml."""
    checked: dict[str, str | int] = {}  # everything is validated before anything is written
    if region is not None:
        checked["region"] = normalize_region(region)
    if team_id is not None:
        checked["team_id"] = normalize_team_id(team_id)
    if profile is not None:
        checked["profile"] = CxProfile(profile.strip(), explicit=True).name
    keys = {"api_key": _secret(api_key, "API key"), "send_key": _secret(send_key, "Send-Your-Data key")}
    with store.transaction() as docs:
        if checked:
            docs.config.setdefault("coralogix", {}).update(checked)
        if any(keys.values()):
            docs.credentials.setdefault("coralogix", {}).update({k: v for k, v in keys.items() if v})
        config = _table(docs.config, "config.toml")
        creds = _table(docs.credentials, "credentials.toml")
        team = config.get("team_id")
        return StoredSettings(
            region=config.get("region"),
            profile=config.get("profile"),
            api_key_stored=bool(creds.get("api_key")),
            send_key_stored=bool(creds.get("send_key")),
            team_id=team if isinstance(team, int) and not isinstance(team, bool) else None,
        )
