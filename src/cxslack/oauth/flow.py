"""Install the Slack app for an integration: authorize → callback → exchange → auth.test → store.

Also refreshes rotating tokens (`fresh_tokens`) before they expire. Nothing here prints: the
caller passes `announce` (shows the authorize URL), `open_url` and `read_paste`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.credentials import (
    AppCredentials,
    IntegrationSecrets,
    TokenSet,
    app_credentials,
    app_settings,
    read_secrets,
    write_secrets,
)
from cxslack.errors import EXIT_AUTH, AuthError, CxError
from cxslack.model import Integration, Status, Workspace
from cxslack.oauth.redirect import DEFAULT_CALLBACK_PATH, DEFAULT_CALLBACK_PORT, DEFAULT_REDIRECT_URI
from cxslack.registry import Registry, quote
from cxslack.scopes import Feature, missing_by_feature
from cxslack.slack.client import SlackAccess, SlackError

DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
# PKCE apps may use plain-http loopback redirects (but cannot request bot scopes on real Slack).
DEFAULT_PKCE_REDIRECT_URI = f"http://127.0.0.1:{DEFAULT_CALLBACK_PORT}{DEFAULT_CALLBACK_PATH}"
DEFAULT_TIMEOUT = 300.0

OAUTH_ERROR_HINTS = {
    "invalid_code": ("the authorization code is invalid or has expired", "Run the authorize command again."),
    "code_already_used": (
        "the authorization code was already used (was the callback page reloaded?)",
        "Run the authorize command again.",
    ),
    "bad_client_secret": ("Slack refused the client secret", "Check it with: cxslack app configure"),
    "invalid_client_id": ("Slack does not know this client id", "Check it with: cxslack app configure"),
    "pkce_not_allowed": (
        "this Slack app does not have PKCE enabled, so it cannot authorize without its client secret",
        "Drop --pkce and configure the client secret: cxslack app configure",
    ),
    "invalid_code_verifier": ("Slack refused the PKCE code verifier", "Run the authorize command again."),
    "invalid_refresh_token": (
        "Slack refused the stored refresh token",
        "Reinstall the app: cxslack integrations authorize {integration}",
    ),
}


def authorize_base_url() -> str:
    return os.environ.get("CXSLACK_SLACK_AUTHORIZE_URL") or DEFAULT_AUTHORIZE_URL


@dataclass
class AuthorizeOptions:
    redirect_uri: str | None = None
    pkce: bool = False
    open_browser: bool = False
    paste: bool = False
    timeout: float = DEFAULT_TIMEOUT
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass
class AuthorizeOutcome:
    integration: Integration
    declined: dict[Feature, list[str]] = field(default_factory=dict)


@dataclass
class FlowIO:
    """How the flow reaches the person: all three are supplied by the CLI layer."""

    announce: Callable[[str], None]
    open_url: Callable[[str], bool]
    read_paste: Callable[[], str]


def authorize(registry: Registry, ref: str, options: AuthorizeOptions, io: FlowIO) -> AuthorizeOutcome:
    from cxslack.oauth.loopback import LoopbackCallback, parse_pasted_redirect
    from cxslack.oauth.pkce import PkcePair, build_authorize_url, new_state
    from cxslack.oauth.redirect import parse_redirect_uri
    from cxslack.oauth.tls import covers_ipv6_loopback, load_tls_context

    store = registry.store
    integration = registry.view().find(ref)
    settings = app_settings(store)
    pkce = options.pkce or bool(settings.get("pkce"))
    if pkce:
        refuse_pkce_with_bot_scopes(integration, from_settings=not options.pkce)
    app = app_credentials(store, need_secret=not pkce)
    uri = (
        options.redirect_uri
        or settings.get("redirect_uri")
        or (DEFAULT_PKCE_REDIRECT_URI if pkce else DEFAULT_REDIRECT_URI)
    )
    target = parse_redirect_uri(str(uri), pkce=pkce)
    state = new_state()
    verifier = PkcePair.generate() if pkce else None

    def url_for(redirect_uri: str) -> str:
        return build_authorize_url(
            authorize_base_url(),
            client_id=app.client_id,
            bot_scopes=integration.requested_bot_scopes,
            user_scopes=integration.requested_user_scopes,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=verifier.code_challenge if verifier else None,
        )

    def complete(code: str, redirect_uri: str) -> AuthorizeOutcome:
        grant = exchange_code(app, code, redirect_uri, verifier.code_verifier if verifier else None)
        return install(registry, integration.id, grant)

    if options.paste:
        io.announce(url_for(target.uri))
        return complete(parse_pasted_redirect(io.read_paste(), target, state).code, target.uri)
    ssl_context, ipv6_too = None, target.host == "localhost"
    if target.tls:
        cert, key = _certificate(store.ensure_state_dir(), options)
        ssl_context, ipv6_too = load_tls_context(cert, key), ipv6_too and covers_ipv6_loopback(cert)
    with LoopbackCallback(
        target, expected_state=state, ssl_context=ssl_context, ipv6_too=ipv6_too
    ) as listener:
        url = url_for(listener.redirect_uri)
        io.announce(url)
        if options.open_browser:
            io.open_url(url)
        result = listener.wait(options.timeout)
        # the browser's page waits for this: "connected" only once Slack has really said yes
        try:
            outcome = complete(result.code, listener.redirect_uri)
        except CxError as exc:
            listener.finish(exc)
            raise
        listener.finish(None)
    return outcome


def refuse_pkce_with_bot_scopes(integration: Integration, *, from_settings: bool) -> None:
    """Slack: "Desktop redirects are not allowed to request bot scopes" — a PKCE flow to a
    localhost redirect (the only kind cxslack's loopback callback is) installs user scopes only
    (docs.slack.dev/authentication/using-pkce). Anything that sends notifications needs bot scopes."""
    from cxslack.errors import UsageError

    bot = integration.requested_bot_scopes
    if not bot:
        return
    why = (
        "the Slack app is configured as a PKCE app (cxslack app configure --pkce)"
        if from_settings
        else "--pkce"
    )
    raise UsageError(
        "pkce_needs_no_bot_scopes",
        f"{why} cannot install {integration.name}: Slack does not let PKCE flows to a localhost "
        f"redirect request bot scopes, and {integration.name} needs {', '.join(bot)}",
        "Install with the app's client secret instead (drop --pkce; cxslack app configure "
        "--client-secret-stdin, or --no-pkce). PKCE suits an access-logs-only integration "
        "(--no-notifications --access-logs).",
    )


def _certificate(state_dir: Path, options: AuthorizeOptions) -> tuple[Path, Path]:
    """The TLS certificate and key for the https listener: --tls-cert/--tls-key, or cxslack's own."""
    from cxslack.oauth.tls import ensure_loopback_certificate

    if options.tls_cert or options.tls_key:
        if not (options.tls_cert and options.tls_key):
            from cxslack.errors import UsageError

            raise UsageError("tls_pair_required", "--tls-cert and --tls-key go together")
        return options.tls_cert, options.tls_key
    return ensure_loopback_certificate(state_dir)


@dataclass
class Grant:
    """What oauth.v2.access returned, normalised. An install that asked for user scopes only
    (access logs) has no bot token."""

    bot: TokenSet | None
    user: TokenSet | None
    team_id: str
    team_name: str
    bot_user_id: str | None
    app_id: str | None


def _oauth_call(app: AppCredentials, integration: str | None = None, **params: Any) -> dict[str, Any]:
    access = SlackAccess(None)
    auth = None
    if app.client_secret and "code_verifier" not in params:
        auth = {"client_id": app.client_id, "client_secret": app.client_secret}
    else:
        params["client_id"] = app.client_id
    try:
        body, _ = access.call("oauth.v2.access", auth=auth, **params)
    except SlackError as exc:
        if exc.code == "bad_redirect_uri":
            from cxslack.oauth.loopback import unregistered_redirect_hint

            raise AuthError(
                "bad_redirect_uri",
                f"Slack refused the redirect URI {params.get('redirect_uri')}",
                unregistered_redirect_hint(str(params.get("redirect_uri"))),
            ) from None
        message, hint = OAUTH_ERROR_HINTS.get(exc.code, (exc.message, exc.hint))
        hint = hint and hint.replace("{integration}", quote(integration) if integration else "NAME")
        raise AuthError(exc.code, message, hint) from None
    return body


def _token_set(token: Any, refresh: Any, expires_in: Any, scope: Any) -> TokenSet:
    return TokenSet(
        access_token=str(token),
        refresh_token=str(refresh) if refresh else None,
        expires_at=int(time.time()) + int(expires_in) if expires_in else None,
        scopes=[s for s in str(scope or "").split(",") if s],
    )


def _grant_from(body: dict[str, Any]) -> Grant:
    authed: dict[str, Any] = body["authed_user"] if isinstance(body.get("authed_user"), dict) else {}
    if not body.get("access_token") and not authed.get("access_token"):
        raise AuthError(
            "oauth_no_token", "Slack's answer carried no token", "Run the authorize command again."
        )
    user = None
    if authed.get("access_token"):
        user = _token_set(
            authed["access_token"], authed.get("refresh_token"), authed.get("expires_in"), authed.get("scope")
        )
    bot = None
    if body.get("access_token"):
        bot = _token_set(
            body["access_token"], body.get("refresh_token"), body.get("expires_in"), body.get("scope")
        )
    team: dict[str, Any] = body["team"] if isinstance(body.get("team"), dict) else {}
    return Grant(
        bot=bot,
        user=user,
        team_id=str(team.get("id", "")),
        team_name=str(team.get("name", "")),
        bot_user_id=body.get("bot_user_id"),
        app_id=body.get("app_id"),
    )


def exchange_code(app: AppCredentials, code: str, redirect_uri: str, code_verifier: str | None) -> Grant:
    params: dict[str, Any] = {"code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        params["code_verifier"] = code_verifier
    return _grant_from(_oauth_call(app, **params))


def install(registry: Registry, integration_id: str, grant: Grant) -> AuthorizeOutcome:
    """auth.test the new bot token (the user token when there is none), then store tokens and
    mark the integration Active.

    The old tokens are replaced only here, after the whole exchange succeeded.
    """
    tested = grant.bot or grant.user
    if tested is None:
        raise AuthError(
            "oauth_no_token", "Slack's answer carried no token", "Run the authorize command again."
        )
    info = SlackAccess(tested.access_token).auth_test()
    granted = info.scopes or list(tested.scopes or [])
    for other in (grant.bot, grant.user):
        if other is not None and other is not tested:
            granted += [s for s in other.scopes or [] if s not in granted]
    with registry.editing() as (view, docs):
        integration = view.integrations[integration_id]
        integration.workspace = Workspace(
            team_id=info.team_id or grant.team_id, team_name=info.team_name or grant.team_name
        )
        integration.bot_user_id = grant.bot_user_id or (info.user_id if grant.bot else None) or None
        integration.granted_scopes = granted
        if info.bot_id:
            integration.extra["bot_id"] = info.bot_id
        if grant.app_id:
            integration.extra["app_id"] = grant.app_id
        integration.set_status(Status.ACTIVE)
        old = read_secrets(docs, integration_id)
        secrets = IntegrationSecrets(bot=grant.bot, user=grant.user, webhook_url=old.webhook_url)
        write_secrets(docs, integration_id, secrets)
    from cxslack.state import open_state

    open_state(registry.store).tokens.installed(integration_id, secrets)  # replicas take the new ones
    return AuthorizeOutcome(integration, missing_by_feature(integration.requested_scopes, granted))


def _refresh(app: AppCredentials, tokens: TokenSet, integration: str) -> TokenSet:
    body = _oauth_call(app, integration, grant_type="refresh_token", refresh_token=tokens.refresh_token)
    return _token_set(
        body.get("access_token"),
        body.get("refresh_token"),
        body.get("expires_in"),
        body.get("scope") or ",".join(tokens.scopes or []),
    )


def fresh_tokens(registry: Registry, integration: Integration) -> IntegrationSecrets:
    """The integration's secrets, with rotating tokens refreshed when within 10 minutes of expiry.

    The refresh runs under the state's token hold (the store lock with files, a row lock in a
    shared database), so two processes — or two `listen` replicas — never both spend the same
    single-use refresh token: the second finds the first one's fresh token and uses it.
    """
    from cxslack.state import open_state

    tokens = open_state(registry.store).tokens
    secrets = tokens.current(integration.id)
    if not _refresh_due(secrets):
        return secrets
    app = app_credentials(registry.store, need_secret=False)

    def renew(latest: IntegrationSecrets) -> IntegrationSecrets:
        for kind in ("bot", "user"):
            current: TokenSet | None = getattr(latest, kind)
            if current and current.expiring() and current.refresh_token:  # still due: nobody refreshed it
                setattr(latest, kind, _refresh(app, current, integration.name))
        return latest

    return tokens.refresh(integration.id, renew)


def _refresh_due(secrets: IntegrationSecrets) -> bool:
    return any(t and t.expiring() and t.refresh_token for t in (secrets.bot, secrets.user))


def bot_access(registry: Registry, integration: Integration) -> SlackAccess:
    """A SlackAccess with the integration's (fresh) bot token; AuthError when it has none."""
    if integration.status is Status.PENDING:
        raise AuthError(
            "integration_pending",
            f"integration {integration.name} is Pending: the Slack app is not installed yet",
            f"Install it with: cxslack integrations authorize {quote(integration.name)}",
        )
    secrets = fresh_tokens(registry, integration)
    if secrets.bot is None:
        raise AuthError(
            "no_token",
            f"no Slack token is stored for integration {integration.name}",
            f"Install the app with: cxslack integrations authorize {quote(integration.name)}",
            exit_code=EXIT_AUTH,
        )
    from cxslack.state import open_state

    pacing = open_state(registry.store).pacing  # shared by every replica on one database
    return SlackAccess(secrets.bot.access_token, integration=integration.name, pacing=pacing)


def mark_failing_if_token_error(registry: Registry, integration_id: str, error: SlackError) -> None:
    """Persist Failing (with Slack's reason) when an error says the token no longer works."""
    if not error.token_invalid:
        return
    with registry.editing() as (view, _):
        integration = view.integrations.get(integration_id)
        if integration and integration.status is not Status.FAILING:
            integration.set_status(
                Status.FAILING, f"{error.code}: the app token was revoked or the app was removed"
            )
