"""The OAuth callback's building blocks over real loopback sockets, httpx playing the browser."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cxslack.errors import EXIT_AUTH, EXIT_FAILED, EXIT_USAGE, AuthError, CxError, UsageError
from cxslack.oauth import tls
from cxslack.oauth.loopback import CallbackResult, LoopbackCallback, parse_pasted_redirect
from cxslack.oauth.pkce import PkcePair, build_authorize_url, new_state, s256_challenge, states_match
from cxslack.oauth.redirect import DEFAULT_CALLBACK_PORT, DEFAULT_REDIRECT_URI, parse_redirect_uri

STATE = new_state()
CALLBACK = "/slack/oauth/callback"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")

# -- helpers: a listener, a browser ----------------------------------------------------------------


def http_listener(path: str = CALLBACK) -> LoopbackCallback:
    return LoopbackCallback(parse_redirect_uri(f"http://127.0.0.1:0{path}", pkce=True), expected_state=STATE)


def callback_url(listener: LoopbackCallback, **params: str) -> str:
    return f"{listener.redirect_uri}?{urlencode(params)}"


Fetched = httpx.Response | httpx.TransportError


def get(url: str, verify: ssl.SSLContext | bool = True) -> Fetched:
    try:
        with httpx.Client(verify=verify, trust_env=False, timeout=5) as client:
            return client.get(url)
    except httpx.TransportError as exc:
        return exc


def response(fetched: Fetched) -> httpx.Response:
    assert isinstance(fetched, httpx.Response), f"request failed: {fetched!r}"
    return fetched


@dataclass
class Visit:
    outcome: CallbackResult | CxError
    fetched: list[Fetched]


def run_browser(listener: LoopbackCallback, browse: Callable[[], list[Fetched]]) -> Visit:
    """`browse` runs on another thread while the test's thread blocks in `wait()`, as in the CLI."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        browser = pool.submit(browse)
        try:
            outcome: CallbackResult | CxError = listener.wait(timeout=10)
            listener.finish(None)  # as the flow does once the code exchange succeeded
        except CxError as err:
            outcome = err
        return Visit(outcome, browser.result(timeout=10))


def visit(listener: LoopbackCallback, *urls: str, verify: ssl.SSLContext | bool = True) -> Visit:
    return run_browser(listener, lambda: [get(url, verify) for url in urls])


def refused(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- the listener --------------------------------------------------------------------------------


def test_valid_callback_returns_the_code_and_shows_the_success_page(
    capfd: pytest.CaptureFixture[str],
) -> None:
    listener = http_listener()
    assert listener.port > 0
    assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}{CALLBACK}"

    got = visit(listener, callback_url(listener, code="secret-code-123", state=STATE))

    assert got.outcome == CallbackResult(code="secret-code-123")
    assert "secret-code-123" not in repr(got.outcome)
    page = response(got.fetched[0])
    assert page.status_code == 200
    assert "Slack is connected. You can close this tab and return to the terminal." in page.text
    assert page.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    out, err = capfd.readouterr()
    assert "secret-code-123" not in out + err and "GET" not in err  # request lines are never logged


def test_other_paths_get_404_and_do_not_end_the_flow() -> None:
    listener = http_listener()
    base = f"http://127.0.0.1:{listener.port}"
    got = visit(
        listener,
        f"{base}/favicon.ico",
        f"{base}/",
        f"{base}{CALLBACK}/extra?code=c&state={STATE}",
        callback_url(listener, code="the-code", state=STATE),
    )
    assert [response(f).status_code for f in got.fetched] == [404, 404, 404, 200]
    assert got.outcome == CallbackResult(code="the-code")


@pytest.mark.parametrize(
    "query",
    [
        {"code": "c", "state": "forged"},
        {"code": "c"},
        {"code": "c", "state": ""},
        {"error": "access_denied"},  # even Slack's answer needs this flow's state
    ],
    ids=["forged", "missing", "empty", "error-without-state"],
)
def test_a_wrong_state_is_refused_and_ends_the_flow(query: dict[str, str]) -> None:
    listener = http_listener()
    # the forged request comes first; a valid one after it must not rescue the flow
    got = visit(listener, callback_url(listener, **query), callback_url(listener, code="c", state=STATE))

    assert isinstance(got.outcome, AuthError)
    assert got.outcome.code == "state_mismatch"
    assert got.outcome.exit_code == EXIT_AUTH
    first = response(got.fetched[0])
    assert first.status_code == 400
    assert "does not belong to the current sign-in" in first.text
    assert isinstance(got.fetched[1], httpx.TransportError) or got.fetched[1].status_code == 400


def test_a_repeated_state_parameter_is_not_trusted() -> None:
    listener = http_listener()
    url = f"{listener.redirect_uri}?code=c&state={STATE}&state=other"
    got = visit(listener, url)
    assert isinstance(got.outcome, AuthError) and got.outcome.code == "state_mismatch"


def test_declining_in_slack_shows_a_page_and_fails_the_flow() -> None:
    listener = http_listener()
    got = visit(listener, callback_url(listener, error="access_denied", state=STATE))

    assert isinstance(got.outcome, AuthError)
    assert (got.outcome.code, got.outcome.message) == (
        "authorization_declined",
        "authorization was declined in Slack",
    )
    assert got.outcome.hint
    assert "authorization was declined in Slack" in response(got.fetched[0]).text


def test_a_slack_error_is_reported_and_its_description_escaped() -> None:
    listener = http_listener()
    hostile = '<script>alert("x")</script>\x1b[31m'
    got = visit(
        listener, callback_url(listener, error="invalid_scope", error_description=hostile, state=STATE)
    )

    assert isinstance(got.outcome, AuthError)
    assert got.outcome.code == "authorization_failed"
    assert "invalid_scope" in got.outcome.message
    assert "\x1b" not in got.outcome.message  # no terminal escape sequences from the query string
    page = response(got.fetched[0])
    assert page.status_code == 400
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text


def test_a_callback_without_code_fails() -> None:
    listener = http_listener()
    got = visit(listener, callback_url(listener, state=STATE))
    assert isinstance(got.outcome, AuthError) and got.outcome.code == "missing_code"


def test_the_listener_closes_after_the_callback_so_a_replay_is_refused() -> None:
    listener = http_listener()
    url = callback_url(listener, code="once", state=STATE)
    assert visit(listener, url).outcome == CallbackResult(code="once")

    assert isinstance(get(url), httpx.ConnectError)
    assert refused(listener.port)


def test_a_replay_on_a_connection_opened_during_the_flow_gets_already_used() -> None:
    listener = http_listener()
    url = callback_url(listener, code="once", state=STATE)
    # Connected first, so the listener accepts it before the real callback; it speaks afterwards.
    early = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    assert visit(listener, url).outcome == CallbackResult(code="once")

    with early:
        target = urlsplit(url)
        early.sendall(f"GET {target.path}?{target.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b"".join(iter(lambda: early.recv(65536), b"")).decode()
    assert answer.startswith("HTTP/1.0 400")
    assert "already used" in answer


def test_timeout_fails_with_a_hint_and_closes_the_socket() -> None:
    listener = http_listener()
    with pytest.raises(AuthError) as caught:
        listener.wait(timeout=0.2)
    assert caught.value.code == "callback_timeout"
    assert caught.value.exit_code == EXIT_AUTH
    assert caught.value.hint and "--timeout" in caught.value.hint and "--paste" in caught.value.hint
    assert refused(listener.port)


def test_ctrl_c_while_waiting_closes_the_socket() -> None:
    listener = http_listener()
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main

    def browse_then_interrupt() -> list[Fetched]:
        # a 404 answered proves wait() is serving; then the user presses Ctrl-C
        fetched = [get(f"http://127.0.0.1:{listener.port}/favicon.ico")]
        signal.pthread_kill(main, signal.SIGINT)
        return fetched

    with pytest.raises(KeyboardInterrupt):
        run_browser(listener, browse_then_interrupt)
    assert refused(listener.port)


def test_a_busy_port_is_reported_with_the_flag_to_change_it() -> None:
    with http_listener() as first:
        target = parse_redirect_uri(f"http://127.0.0.1:{first.port}{CALLBACK}", pkce=True)
        with pytest.raises(CxError) as caught:
            LoopbackCallback(target, expected_state=STATE)
    assert caught.value.code == "port_in_use"
    assert caught.value.exit_code == EXIT_FAILED
    assert str(first.port) in caught.value.message
    assert caught.value.hint and "--redirect-uri" in caught.value.hint


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", pytest.param("[::1]", marks=needs_ipv6)])
def test_https_callback_with_the_generated_certificate(tmp_path: Path, host: str) -> None:
    cert, key = tls.ensure_loopback_certificate(tmp_path / "state")
    target = parse_redirect_uri(f"https://{host}:0{CALLBACK}", pkce=False)
    listener = LoopbackCallback(target, expected_state=STATE, ssl_context=tls.load_tls_context(cert, key))
    assert listener.redirect_uri == f"https://{host}:{listener.port}{CALLBACK}"
    trust_our_cert = ssl.create_default_context(cafile=str(cert))
    url = callback_url(listener, code="tls-code", state=STATE)

    # A browser first refuses the self-signed certificate; that must not end the flow.
    got = run_browser(
        listener, lambda: [get(url, verify=ssl.create_default_context()), get(url, trust_our_cert)]
    )

    assert isinstance(got.fetched[0], httpx.ConnectError)
    assert response(got.fetched[1]).status_code == 200
    assert got.outcome == CallbackResult(code="tls-code")


def test_https_target_requires_a_tls_context() -> None:
    with pytest.raises(ValueError):
        LoopbackCallback(parse_redirect_uri(DEFAULT_REDIRECT_URI, pkce=False), expected_state=STATE)


# -- --paste ------------------------------------------------------------------------------------


def test_pasted_url_yields_the_code() -> None:
    target = parse_redirect_uri(DEFAULT_REDIRECT_URI, pkce=False)
    pasted = f"  {DEFAULT_REDIRECT_URI}?code=pasted-code&state={STATE}\n"
    assert parse_pasted_redirect(pasted, target, STATE) == CallbackResult(code="pasted-code")


@pytest.mark.parametrize(
    ("pasted", "differs"),
    [
        (f"https://127.0.0.1:8976{CALLBACK}", "host"),
        (f"https://localhost:8977{CALLBACK}", "port"),
        ("https://localhost:8976/other", "path"),
        (f"http://localhost:8976{CALLBACK}", "scheme"),
        ("https://slack.com/oauth/v2/authorize", "host, port, path"),
        ("code=c", "scheme, host, port, path"),
    ],
)
def test_pasted_url_must_be_the_redirect_uri(pasted: str, differs: str) -> None:
    target = parse_redirect_uri(DEFAULT_REDIRECT_URI, pkce=False)
    with pytest.raises(UsageError) as caught:
        parse_pasted_redirect(f"{pasted}?code=leaky-code&state={STATE}", target, STATE)
    assert caught.value.code == "pasted_url_mismatch"
    assert f"its {differs} differ" in caught.value.message
    assert "leaky-code" not in caught.value.message  # the pasted URL is never echoed


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("code=c&state=forged", "state_mismatch"),
        (f"error=access_denied&state={STATE}", "authorization_declined"),
    ],
)
def test_pasted_url_gets_the_same_checks_as_the_listener(query: str, code: str) -> None:
    target = parse_redirect_uri(DEFAULT_REDIRECT_URI, pkce=False)
    with pytest.raises(AuthError) as caught:
        parse_pasted_redirect(f"{DEFAULT_REDIRECT_URI}?{query}", target, STATE)
    assert caught.value.code == code


# -- --redirect-uri -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "pkce", "scheme", "bind_ip", "port", "path"),
    [
        (DEFAULT_REDIRECT_URI, False, "https", "127.0.0.1", DEFAULT_CALLBACK_PORT, CALLBACK),
        ("https://127.0.0.1:9000/cb", False, "https", "127.0.0.1", 9000, "/cb"),
        ("https://[::1]:9000/cb", False, "https", "::1", 9000, "/cb"),
        ("https://LocalHost:9000", False, "https", "127.0.0.1", 9000, "/"),
        ("http://127.0.0.1:8976/cb", True, "http", "127.0.0.1", 8976, "/cb"),
        ("http://[::1]:8976/cb", True, "http", "::1", 8976, "/cb"),
        ("http://localhost:8976/cb", True, "http", "127.0.0.1", 8976, "/cb"),
    ],
)
def test_loopback_redirect_uris_are_accepted(
    uri: str, pkce: bool, scheme: str, bind_ip: str, port: int, path: str
) -> None:
    target = parse_redirect_uri(uri, pkce=pkce)
    assert (target.uri, target.scheme, target.bind_ip, target.port, target.path) == (
        uri,
        scheme,
        bind_ip,
        port,
        path,
    )
    assert target.tls == (scheme == "https")


@pytest.mark.parametrize(
    ("uri", "pkce", "rule"),
    [
        ("https://example.com:8976/cb", False, "host must be"),
        ("https://0.0.0.0:8976/cb", False, "host must be"),
        ("https://192.168.1.10:8976/cb", False, "host must be"),
        ("https://[::]:8976/cb", False, "host must be"),
        ("https://localhost.evil.example:8976/cb", False, "host must be"),
        ("http://example.com:8976/cb", True, "host must be"),
        ("http://localhost:8976/cb", False, "PKCE"),
        ("http://127.0.0.1:8976/cb", False, "PKCE"),
        ("http://[::1]:8976/cb", False, "PKCE"),
        ("ftp://localhost:8976/cb", False, "scheme"),
        ("localhost:8976/cb", False, "scheme"),
        ("https://user:hunter2@localhost:8976/cb", False, "user name or password"),
        ("https://localhost:8976/cb#frag", False, "fragment"),
        ("https://localhost/cb", False, "port must be explicit"),
        ("https://localhost:99999/cb", False, "not a valid URL"),
        ("https://localhost:8976/c b", False, "spaces"),
    ],
)
def test_other_redirect_uris_are_usage_errors(uri: str, pkce: bool, rule: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_redirect_uri(uri, pkce=pkce)
    error = caught.value
    assert (error.code, error.exit_code) == ("invalid_redirect_uri", EXIT_USAGE)
    assert rule in error.message
    assert error.hint and DEFAULT_REDIRECT_URI in error.hint
    assert "hunter2" not in error.message
    if "@" not in uri:
        assert uri in error.message


# -- the certificate ------------------------------------------------------------------------------


def test_certificate_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the widest umask: the modes must not depend on it
    try:
        cert, key = tls.ensure_loopback_certificate(tmp_path / "state")
    finally:
        os.umask(old)
    assert (key.parent.stat().st_mode & 0o777) == 0o700
    assert (key.stat().st_mode & 0o777) == 0o600
    assert (cert.stat().st_mode & 0o777) == 0o644
    assert key.parent == tmp_path / "state" / "tls"


def test_certificate_is_for_every_loopback_name(tmp_path: Path) -> None:
    cert, key = tls.ensure_loopback_certificate(tmp_path)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {ip_address("127.0.0.1"), ip_address("::1")}
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1"
    lifetime = certificate.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=360) < lifetime <= timedelta(days=366)


def test_certificate_is_reused_until_it_nears_expiry_or_breaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def current() -> list[bytes]:
        return [path.read_bytes() for path in tls.ensure_loopback_certificate(tmp_path)]

    monkeypatch.setattr(tls, "CERT_VALIDITY", timedelta(days=10))  # inside RENEW_WITHIN
    short_lived = current()
    monkeypatch.undo()
    renewed = current()
    assert renewed != short_lived
    assert current() == renewed

    (tmp_path / "tls" / tls.KEY_FILE).write_text("damaged\n")
    replaced = current()
    assert replaced != renewed
    assert tls.load_tls_context(*tls.ensure_loopback_certificate(tmp_path))


def test_unusable_tls_files_are_a_clear_tls_error(tmp_path: Path) -> None:
    cert, key = tls.ensure_loopback_certificate(tmp_path / "a")
    other_cert, other_key = tls.ensure_loopback_certificate(tmp_path / "b")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted-key.pem"
    private_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    encrypted.write_bytes(
        private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )

    cases = [
        ((tmp_path / "missing.pem", key), "cannot read"),
        ((junk, key), "is not a PEM certificate"),
        ((cert, junk), "is not a PEM private key"),
        ((cert, encrypted), "is encrypted"),
        ((cert, other_key), "is not the private key of the certificate"),
    ]
    for (cert_path, key_path), expected in cases:
        with pytest.raises(CxError) as caught:
            tls.load_tls_context(cert_path, key_path)
        assert caught.value.code == "tls_error", expected
        assert expected in caught.value.message
        assert caught.value.hint and "--tls-cert" in caught.value.hint
    assert tls.load_tls_context(other_cert, other_key)  # a matching pair from elsewhere (mkcert) loads


# -- state, PKCE, the authorize URL ----------------------------------------------------------------


def test_state_is_long_random_and_compared_safely() -> None:
    state = new_state()
    assert len(state) >= 43 and state != new_state()  # ≥ 256 bits, base64url
    assert states_match(state, state)
    assert not states_match(state, state + "x")
    assert not states_match(state, None)
    assert not states_match(None, None)
    assert not states_match("", "")
    assert not states_match(state, "é")  # non-ASCII must not raise


def test_pkce_pair_is_s256_per_rfc_7636() -> None:
    # RFC 7636 appendix B
    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    pair = PkcePair.generate()
    assert 43 <= len(pair.code_verifier) <= 128
    assert set(pair.code_verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert pair.code_challenge == s256_challenge(pair.code_verifier)
    assert pair.code_verifier not in repr(pair)
    assert PkcePair.generate().code_verifier != pair.code_verifier


def test_authorize_url_encodes_every_value() -> None:
    redirect = "https://localhost:8976/cb?tenant=a&x=1"
    url = build_authorize_url(
        "https://slack.com/oauth/v2/authorize",
        client_id="123.456",
        bot_scopes=["chat:write", "users:read.email"],
        user_scopes=["openid", "admin"],
        redirect_uri=redirect,
        state="s t&u",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        team="T0123",
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "slack.com", "/oauth/v2/authorize")
    assert parse_qs(parts.query) == {
        "client_id": ["123.456"],
        "scope": ["chat:write,users:read.email"],
        "user_scope": ["openid,admin"],
        "redirect_uri": [redirect],
        "state": ["s t&u"],
        "code_challenge": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
        "code_challenge_method": ["S256"],
        "team": ["T0123"],
    }
    assert "redirect_uri=https://localhost:8976/cb%3Ftenant%3Da%26x%3D1&" in url
    assert "scope=chat:write,users:read.email&" in url


def test_authorize_url_without_pkce_or_user_scopes() -> None:
    url = build_authorize_url(
        "http://127.0.0.1:5000/oauth/v2/authorize?sandbox=1",
        client_id="1.2",
        bot_scopes=["chat:write"],
        user_scopes=[],
        redirect_uri="http://127.0.0.1:8976/cb",
        state="s",
    )
    query = parse_qs(urlsplit(url).query)
    assert query["sandbox"] == ["1"]
    assert "user_scope" not in query and "code_challenge" not in query and "team" not in query
