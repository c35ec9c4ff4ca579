"""The one-time `state`, the S256 PKCE pair (RFC 7636) and Slack's authorize URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode


def new_state() -> str:
    """A fresh, unguessable `state` (256 bits) binding the callback to this very request (CSRF)."""
    return secrets.token_urlsafe(32)


def states_match(expected: str | None, got: str | None) -> bool:
    """Constant-time comparison, so the callback's answer time reveals nothing about `expected`."""
    if not expected or not got:
        return False
    return hmac.compare_digest(expected.encode(), got.encode())


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PkcePair:
    code_verifier: str = field(repr=False)  # sent only with the code exchange; never shown
    code_challenge: str  # S256, the only method cxslack uses

    @classmethod
    def generate(cls) -> PkcePair:
        # 64 random bytes → 86 characters of [A-Za-z0-9_-]: within RFC 7636's 43–128 unreserved ones
        verifier = secrets.token_urlsafe(64)
        return cls(code_verifier=verifier, code_challenge=s256_challenge(verifier))


def build_authorize_url(
    base_url: str,
    *,
    client_id: str,
    bot_scopes: Sequence[str],
    user_scopes: Sequence[str],
    redirect_uri: str,
    state: str,
    code_challenge: str | None = None,
    team: str | None = None,
) -> str:
    """Slack's `oauth/v2/authorize` URL, every value percent-encoded.

    slack_sdk's AuthorizeUrlGenerator leaves `redirect_uri` unencoded (a `?` or `&` in it would
    corrupt the query) and knows no PKCE, hence this.
    """
    params: list[tuple[str, str]] = [("client_id", client_id)]
    if bot_scopes:
        params.append(("scope", ",".join(bot_scopes)))
    if user_scopes:
        params.append(("user_scope", ",".join(user_scopes)))
    params += [("redirect_uri", redirect_uri), ("state", state)]
    if code_challenge:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    if team:
        params.append(("team", team))
    # `:`, `/` and `,` mean nothing inside a query value: leaving them readable keeps the URL
    # that --no-browser prints legible; everything else that could end a value is encoded.
    query = urlencode(params, quote_via=quote, safe=":/,")
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"
