"""A real browser (headless Chromium) installs the Slack app against the sandbox.

.ci/run installs Debian's chromium and chromium-driver; elsewhere this module is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cxslack.sandbox import SlackSandbox

from .conftest import Cli, add_integration
from .oauth_browser import sandbox_env, start
from .sandbox_fixture import register_redirect

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="Debian chromium + chromium-driver not installed"
)


def spki_hash(cert: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    return base64.b64encode(
        hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()
    ).decode()


@pytest.fixture
def browser_factory() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []
    profile = tempfile.TemporaryDirectory()

    def make(trust_cert: Path | None = None) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile.name}/{len(drivers)}",
        ):  # fmt: skip
            options.add_argument(flag)
        if trust_cert is not None:
            options.add_argument(f"--ignore-certificate-errors-spki-list={spki_hash(trust_cert)}")
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()
    profile.cleanup()


def click_allow_and_read(browser: Any, url: str) -> str:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # The authorize URL itself names the callback (redirect_uri=…), so wait for the browser to be
    # *on* the callback and for its page to have loaded, then read the text in one script call: an
    # element looked up while the page was still changing would go stale.
    callback = parse_qs(urlsplit(url).query)["redirect_uri"][0].split("?")[0]
    register_redirect(url)  # the ephemeral callback URL, in the sandbox app's Redirect URLs
    try:
        browser.get(url)
        browser.find_element(By.ID, "allow").click()
        WebDriverWait(browser, 20).until(
            lambda b: (
                b.current_url.startswith(callback)
                and b.execute_script("return document.readyState") == "complete"
            )
        )
        return str(browser.execute_script("return document.body.innerText"))
    except WebDriverException as exc:  # say where the browser was, so a failure explains itself
        raise AssertionError(
            f"{type(exc).__name__} at {browser.current_url}: {browser.page_source[:500]}"
        ) from exc


def test_browser_clicks_allow_over_http(cli: Cli, sandbox: SlackSandbox, browser_factory: Any) -> None:
    """Plain http is for PKCE apps (Slack refuses http redirect URLs for confidential ones), whose
    localhost installs carry user scopes only: an access-logs integration."""
    add_integration(cli, "Logs", "--no-notifications", "--access-logs")
    httpx.post(f"{sandbox.url}/_sandbox/settings", json={"pkce_enabled": True}).raise_for_status()
    flow = start(
        [
            "integrations",
            "authorize",
            "Logs",
            "--pkce",
            "--redirect-uri",
            "http://127.0.0.1:0/slack/oauth/callback",
            "--no-browser",
        ],
        {**sandbox_env(sandbox), "CXSLACK_SLACK_CLIENT_SECRET": ""},
    )
    text = click_allow_and_read(browser_factory(), flow.url)
    code, _, err = flow.finish()
    assert code == 0, err
    assert "You can close this tab and return to the terminal" in text
    assert cli.ok("integrations", "show", "logs", "-o", "json").json()["integration"]["status"] == "active"


def test_browser_over_the_https_listener_with_the_generated_certificate(
    cli: Cli, sandbox: SlackSandbox, browser_factory: Any, cxslack_home: Path
) -> None:
    from cxslack.oauth.tls import ensure_loopback_certificate

    add_integration(cli, "Payments")
    cert, _ = ensure_loopback_certificate(cxslack_home / "state")  # the same certificate the CLI reuses
    flow = start(
        [
            "integrations",
            "authorize",
            "Payments",
            "--redirect-uri",
            "https://localhost:0/slack/oauth/callback",
            "--no-browser",
        ],
        sandbox_env(sandbox),
    )
    text = click_allow_and_read(browser_factory(trust_cert=cert), flow.url)
    code, _, err = flow.finish()
    assert code == 0, err
    assert "You can close this tab and return to the terminal" in text
