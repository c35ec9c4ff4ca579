"""The browser's callback page tells the truth, and `localhost` is served on both loopbacks."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from cxslack.oauth import tls
from cxslack.oauth.loopback import CallbackResult, LoopbackCallback
from cxslack.oauth.redirect import parse_redirect_uri
from cxslack.sandbox import SlackSandbox

from .conftest import Cli, add_integration
from .oauth_browser import follow_callback, press, sandbox_env, start
from .test_oauth_loopback import STATE, callback_url, get, needs_ipv6, response, run_browser

REDIRECT = "https://localhost:0/slack/oauth/callback"  # an ordinary (confidential) app: https only


def test_the_page_says_connected_only_after_the_exchange_succeeded(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    env = {**sandbox_env(sandbox), "CXSLACK_SLACK_CLIENT_SECRET": "not-the-secret"}
    flow = start(["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"], env)
    page = follow_callback(press(flow.url))  # the code is good; the exchange then fails
    code, _, _ = flow.finish()
    assert code == 4
    assert "Slack is connected" not in page.text
    assert page.status_code >= 400 and "Slack could not be connected" in page.text
    assert "Slack refused the client secret" in page.text

    flow = start(["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"],
                 sandbox_env(sandbox))  # fmt: skip
    page = follow_callback(press(flow.url))
    assert flow.finish()[0] == 0
    assert page.status_code == 200 and "Slack is connected" in page.text
    assert (
        cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]["status"] == "active"
    )


@needs_ipv6
def test_a_localhost_https_listener_answers_on_ipv6_too(tmp_path: Path) -> None:
    cert, key = tls.ensure_loopback_certificate(tmp_path / "state")
    assert tls.covers_ipv6_loopback(cert)
    target = parse_redirect_uri("https://localhost:0/slack/oauth/callback", pkce=False)
    listener = LoopbackCallback(target, expected_state=STATE, ssl_context=tls.load_tls_context(cert, key),
                                ipv6_too=True)  # fmt: skip
    assert listener.addresses == [f"127.0.0.1:{listener.port}", f"[::1]:{listener.port}"]
    trust = ssl.create_default_context(cafile=str(cert))
    url = callback_url(listener, code="v6-code", state=STATE).replace("localhost", "[::1]")
    got = run_browser(listener, lambda: [get(url, trust)])
    assert got.outcome == CallbackResult(code="v6-code")
    assert "Slack is connected" in response(got.fetched[0]).text


def certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate for `names` (DNS names or IP addresses), as mkcert would make."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def san(name: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ip_address(name))
        except ValueError:
            return x509.DNSName(name)

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
             .not_valid_after(now + timedelta(days=30))
             .add_extension(x509.SubjectAlternativeName([san(n) for n in names]), critical=False)
             .sign(key, hashes.SHA256()))  # fmt: skip
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert, key_file


@needs_ipv6
def test_the_flow_listens_on_ipv6_only_when_the_certificate_covers_it(tmp_path: Path, cli: Cli,
                                                                      sandbox: SlackSandbox) -> None:  # fmt: skip
    add_integration(cli, "Payments")
    redirect = ["--redirect-uri", "https://localhost:0/slack/oauth/callback", "--no-browser"]
    both = certificate(tmp_path, "localhost", "127.0.0.1", "::1")
    flow = start(["integrations", "authorize", "Payments", *redirect, "--tls-cert", str(both[0]), "--tls-key",
                  str(both[1])], sandbox_env(sandbox))  # fmt: skip
    page = httpx.get(press(flow.url).replace("//localhost:", "//[::1]:"), verify=False, timeout=30)
    assert flow.finish()[0] == 0 and "Slack is connected" in page.text

    (tmp_path / "v4").mkdir()
    v4 = certificate(tmp_path / "v4", "localhost", "127.0.0.1")
    assert not tls.covers_ipv6_loopback(v4[0])
    flow = start(["integrations", "authorize", "Payments", *redirect, "--tls-cert", str(v4[0]), "--tls-key",
                  str(v4[1])], sandbox_env(sandbox))  # fmt: skip
    location = press(flow.url)
    try:
        httpx.get(location.replace("//localhost:", "//[::1]:"), verify=False, timeout=5)
        raise AssertionError("the listener answered on ::1 with a certificate that does not cover it")
    except httpx.ConnectError:
        pass
    assert (
        "Slack is connected" in httpx.get(location.replace("//localhost:", "//127.0.0.1:"), verify=False).text
    )
    assert flow.finish()[0] == 0
