"""The OAuth v2 authorize page: what a person sees in the browser before Allow or Deny.

GET shows the requested scopes and a form; POST with `decision=allow` redirects to
`redirect_uri?code=…&state=…`, with `decision=deny` to `redirect_uri?error=access_denied&state=…`.
With the app setting `auto_approve` (`sandbox serve --auto-approve`) the GET itself answers as if
Allow had been pressed, so a browser (or `curl -I`) lands on the callback at once.
Every value echoed into the page is HTML-escaped: the query string is attacker-controlled.
The `redirect_uri` must be one of the app's registered Redirect URLs, exactly (redirects.py holds
those rules and their sources); an unregistered one gets an error page, never a redirect.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlencode

from cxslack.sandbox import redirects
from cxslack.sandbox.wire import Request, Response
from cxslack.sandbox.workspace import APP_NAME, CLIENT_ID, TEAM_NAME, Workspace

PATH = "/oauth/v2/authorize"
FIELDS = (
    "client_id",
    "scope",
    "user_scope",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "team",
)
# The page can only ever be a top-level document; it holds an Allow button worth clickjacking.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


# Sign in with Slack's OpenID Connect scopes: requested at /openid/connect/authorize and
# exchanged through openid.connect.token, not part of the v2 install flow
# (docs.slack.dev/authentication/sign-in-with-slack).
OIDC_SCOPES = frozenset({"openid", "email", "profile"})


def scope_list(value: str) -> list[str]:
    return [s for s in re.split(r"[,\s]+", value) if s]


def _problem(ws: Workspace, params: dict[str, str]) -> str | None:
    """Why this authorize request cannot be shown or granted, if it cannot."""
    if params.get("client_id") != CLIENT_ID:
        return "Unknown client_id: no app with this id is installed in the sandbox."
    with ws.lock:
        registered, pkce_enabled = list(ws.settings.redirect_urls), ws.settings.pkce_enabled
    target, problem = redirects.resolve(params.get("redirect_uri"), registered)
    if problem or target is None:
        return problem or redirects.UNREGISTERED
    bot, user = scope_list(params.get("scope", "")), scope_list(params.get("user_scope", ""))
    if not bot and not user:
        return "No scopes were requested (scope or user_scope)."
    oidc = sorted(OIDC_SCOPES.intersection(bot + user))
    if oidc:
        return (
            f"Invalid permissions requested: {', '.join(oidc)} belong to Sign in with Slack "
            "(/openid/connect/authorize), not to the OAuth v2 install."
        )
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        return "code_challenge_method must be S256."
    if bot and redirects.is_desktop_redirect(target) and (params.get("code_challenge") or pkce_enabled):
        # docs.slack.dev/authentication/using-pkce: "Desktop redirects are not allowed to request
        # bot scopes" (custom URI schemes and localhost redirects of PKCE flows and PKCE apps)
        return "Desktop redirects (localhost or a custom URI scheme) cannot request bot scopes with PKCE."
    return None


def _redirect_target(ws: Workspace, params: dict[str, str]) -> str:
    """Where the browser goes back to: the redirect_uri sent, or the app's configured one."""
    with ws.lock:
        target, _ = redirects.resolve(params.get("redirect_uri"), list(ws.settings.redirect_urls))
    assert target is not None  # _problem() said it resolves
    return target


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def _error_page(message: str) -> Response:
    body = f"<h1>Something went wrong</h1>\n<p>{escape(message)}</p>"
    return Response.html(400, _page("Slack sandbox: authorization error", body), _HEADERS)


def _scope_items(scopes: list[str]) -> str:
    return "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes) or "<li>none</li>"


def show(ws: Workspace, request: Request) -> Response:
    params = request.query_params()
    problem = _problem(ws, params)
    if problem:
        return _error_page(problem)
    with ws.lock:
        auto_approve = ws.settings.auto_approve
    if auto_approve:
        return _grant(ws, params, "allow")
    hidden = "\n".join(
        f'<input type=hidden name="{name}" value="{escape(params[name])}">'
        for name in FIELDS
        if name in params
    )
    body = (
        f"<h1>{escape(APP_NAME)} is requesting permission to access the {escape(TEAM_NAME)} Slack workspace</h1>\n"
        f"<h2>Bot scopes</h2>\n<ul>{_scope_items(scope_list(params.get('scope', '')))}</ul>\n"
        f"<h2>User scopes</h2>\n<ul>{_scope_items(scope_list(params.get('user_scope', '')))}</ul>\n"
        f"<p>After you decide, the browser returns to <code>{escape(_redirect_target(ws, params))}</code>.</p>\n"
        f"<form method=post action={PATH}>\n{hidden}\n"
        "<button type=submit name=decision value=allow id=allow>Allow</button>\n"
        "<button type=submit name=decision value=deny id=deny>Deny</button>\n"
        "</form>"
    )
    return Response.html(200, _page(f"Install {APP_NAME}", body), _HEADERS)


def decide(ws: Workspace, request: Request) -> Response:
    """The person's click: a one-time code for Allow, access_denied for Deny."""
    params = {k: str(v) for k, v in request.params().items()}
    problem = _problem(ws, params)
    if problem:
        return _error_page(problem)
    return _grant(ws, params, params.get("decision"))


def _grant(ws: Workspace, params: dict[str, str], decision: str | None) -> Response:
    redirect_uri = _redirect_target(ws, params)
    if decision == "allow":
        with ws.lock:
            code = ws.create_code(
                scope_list(params.get("scope", "")),
                scope_list(params.get("user_scope", "")),
                redirect_uri,
                params.get("code_challenge") or None,
                sent_redirect_uri=bool(params.get("redirect_uri")),
            )
        outcome = {"code": code}
    elif decision == "deny":
        outcome = {"error": "access_denied"}
    else:
        return _error_page("decision must be allow or deny.")
    if "state" in params:
        outcome["state"] = params["state"]
    return Response.redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(outcome))


def press(authorize_url: str, decision: str = "allow") -> str:
    """What a person's browser does on this page: load it, press Allow (or Deny) and return the
    redirect Location, without following it. For the demo and the tests."""
    import html

    import httpx

    page = httpx.get(authorize_url, timeout=30)
    if page.status_code == 302:  # auto-approve: Allow was pressed already
        return str(page.headers["location"])
    page.raise_for_status()
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type=hidden name="([^"]+)" value="([^"]*)">', page.text)
    }
    answer = httpx.post(
        str(httpx.URL(authorize_url).copy_with(query=None)), data={**fields, "decision": decision}, timeout=30
    )
    if answer.status_code != 302:
        raise RuntimeError(f"the sandbox's authorize page answered {answer.status_code}")
    return str(answer.headers["location"])
