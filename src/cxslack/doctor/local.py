"""Local health: the files cxslack keeps, the Slack app's credentials, and integrations or
connectors left half-way (Pending, still on an earlier version, or pointing at nothing)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cxslack.connectors import Connector
from cxslack.credentials import app_credentials, app_settings, read_secrets
from cxslack.doctor import remedies
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.errors import CxError
from cxslack.model import Integration, Status
from cxslack.registry import quote
from cxslack.store import Store

LOCAL = Symptom.LOCAL


def config_check(store: Store, ctx: Context | None, error: CxError | None) -> Check:
    """config.toml parses into integrations and connectors (`error` is why it did not)."""
    path = store.paths.config_file
    subject = Context.local("config file")
    if error is not None:
        remedy = f"fix or restore {quote(str(path))}; cxslack left it as it is"
        return subject.check("local.config", LOCAL, CheckStatus.FAIL, error.message, remedy)
    if not path.exists():
        return subject.check("local.config", LOCAL, CheckStatus.OK, f"no config yet at {path}")
    assert ctx is not None
    summary = f"{len(ctx.all_integrations)} integration(s), {ctx.connector_count} connector(s)"
    return subject.check("local.config", LOCAL, CheckStatus.OK, f"{path} is readable: {summary}")


def file_checks(store: Store) -> Iterator[Check]:
    """The credentials file (readable, 0600), the config directory (0700), the app's credentials."""
    creds = store.paths.credentials_file
    subject = Context.local("credentials file")
    if not creds.exists():
        yield subject.check(
            "local.credentials", LOCAL, CheckStatus.OK, f"no credentials stored yet ({creds})"
        )
    else:
        try:
            store.read_credentials()
            yield subject.check("local.credentials", LOCAL, CheckStatus.OK, f"{creds} is readable")
        except CxError as exc:
            remedy = f"fix or restore {quote(str(creds))}, or reinstall each integration's app"
            yield subject.check("local.credentials", LOCAL, CheckStatus.FAIL, exc.message, remedy)
        # Secrets readable by others are a fault even when nothing else is wrong.
        yield _mode_check(creds, 0o600, "local.credentials_mode", CheckStatus.FAIL, subject.label)
    for directory, id, label in (
        (store.paths.config_dir, "local.config_dir_mode", "config directory"),
        (store.paths.state_dir, "local.state_dir_mode", "state directory"),
    ):
        if directory.is_dir():
            yield _directory_check(directory, id, label)
    yield _app_check(store)


def _directory_check(path: Path, id: str, label: str) -> Check:
    """cxslack makes its directories 0700 and never changes one it did not make: say so instead."""
    from cxslack.state.files import shared_directory_problem

    problem = shared_directory_problem(path)
    if problem is None:
        return _mode_check(path, 0o700, id, CheckStatus.WARN, label)
    return Context.local(label).check(
        id, LOCAL, CheckStatus.WARN, problem,
        "Point CXSLACK_HOME at a directory only you can write to (or chmod go-w it, if it is yours alone)",
    )  # fmt: skip


def _mode_check(path: Path, allowed: int, id: str, severity: CheckStatus, label: str) -> Check:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    subject = Context.local(label)
    if mode & ~allowed:
        return subject.check(
            id, LOCAL, severity, f"{path} is mode {mode:04o}: others can read it (it must be {allowed:04o})",
            f"chmod {allowed:o} {quote(str(path))}",
        )  # fmt: skip
    return subject.check(id, LOCAL, CheckStatus.OK, f"{path} is mode {mode:04o}")


def _app_check(store: Store) -> Check:
    subject = Context.local("Slack app credentials")
    try:
        pkce = bool(app_settings(store).get("pkce"))
        app = app_credentials(store, need_secret=not pkce)
    except CxError as exc:
        return subject.check(
            "local.app_credentials", LOCAL, CheckStatus.WARN, exc.message, "cxslack app configure"
        )
    kind = "PKCE public client" if app.client_secret is None else "client id and secret"
    return subject.check(
        "local.app_credentials",
        LOCAL,
        CheckStatus.OK,
        f"Slack app {kind} configured (client id {app.client_id})",
    )


class LocalChecks(SymptomChecks):
    symptom = LOCAL

    def workspace(self, ctx: Context) -> Iterator[Check]:
        for connector in ctx.orphans:
            yield _orphan(ctx, connector)

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        subject = ctx.integration_subject(integration)
        yield subject.check("local.installed", LOCAL, *_installed(ctx, integration))
        if integration.collects_access_logs:
            from cxslack.access_logs.health import access_logs_health

            status, message, remedy = access_logs_health(integration)
            if status != "skip":  # skip: not enabled, or Pending (local.installed says so)
                yield subject.check("local.access_logs", LOCAL, CheckStatus(status), message, remedy or None)
        yield from _in_doubt(ctx, integration)
        if integration.supports_cases_features:
            return
        connectors = ctx.connectors_of(integration)
        if connectors:
            yield subject.check(
                "local.migration", LOCAL, CheckStatus.WARN,
                f"{len(connectors)} connector(s) still deliver through v{integration.version}: migrate them to "
                "v0.1.0, one at a time, with no downtime",
                remedies.move_to_current(ctx, integration),
            )  # fmt: skip
        else:
            yield subject.check(
                "local.migration", LOCAL, CheckStatus.WARN,
                f"v{integration.version} has no connectors left: it can be removed",
                f"cxslack integrations remove {quote(integration.name)} --yes",
            )  # fmt: skip


def _installed(ctx: Context, integration: Integration) -> tuple[CheckStatus, str, str | None]:
    if integration.status is Status.PENDING:
        reason = integration.status_reason or "the Slack app is not installed yet"
        return CheckStatus.WARN, f"Pending: {reason}", remedies.authorize(integration)
    if integration.workspace is not None:
        ws = integration.workspace
        return CheckStatus.OK, f"installed in {ws.team_name} ({ws.team_id})", None
    try:
        webhook = read_secrets(ctx.registry.store, integration.id).webhook_url is not None
    except CxError:
        webhook = False  # local.credentials reports the unreadable file
    if webhook:
        return CheckStatus.OK, "delivers through an incoming webhook", None
    return CheckStatus.OK, "installed", None


def _orphan(ctx: Context, connector: Connector) -> Check:
    target = next((i for i in ctx.all_integrations if i.supports_cases_features), None)
    to = quote(target.name) if target else "INTEGRATION"
    return Context.connector_subject(connector, None).check(
        "local.missing_integration", LOCAL, CheckStatus.FAIL,
        f"connector {connector.name} references integration {connector.integration}, which does not exist: "
        "nothing delivers its notifications",
        f"{remedies.edit_connector(connector, f'--integration {to}')}, or remove it: "
        f"cxslack connectors remove {quote(connector.name)} --yes",
    )  # fmt: skip


def _in_doubt(ctx: Context, integration: Integration) -> Iterator[Check]:
    """Messages sent through this integration whose arrival cxslack could not tell: nothing more
    is sent for their purpose until a rerun can look, or someone says to resend."""
    from cxslack.connectors import channel_label
    from cxslack.model import utc_now
    from cxslack.state import open_state

    try:
        posts = [p for p in open_state(ctx.registry.store).in_doubt.all() if p.integration == integration.id]
    except CxError:
        return  # the state cannot be read: local.config / the state's own errors say so
    subject = ctx.integration_subject(integration)
    for post in posts:
        kind, _, rest = post.purpose.partition("|")
        where = " or ".join(channel_label(c) for c in post.channels)
        if kind == "test":
            what, rerun = f"the test notification of connector {rest}", f"cxslack connectors test {rest}"
        else:
            case, _, connector = rest.rpartition("|")[0].partition("|")
            what, rerun = (
                f"an update of Case {case} on connector {connector}",
                "the cases notify that sent it",
            )
        yield subject.check(
            "local.in_doubt", LOCAL, CheckStatus.WARN,
            f"{what} was sent to {where} at {utc_now(post.sent_at)} and cxslack cannot tell whether it arrived "
            f"({post.why or 'its answer was lost'}): nothing more is sent for it",
            f"Look in {where}; then rerun {rerun} (it looks again), or add --resend if it did not arrive",
        )  # fmt: skip
