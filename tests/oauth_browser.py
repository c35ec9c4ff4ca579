"""A scripted 'browser' for the OAuth tests: follows the authorize URL, presses a button."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET, SlackSandbox, authorize
from tests.sandbox_fixture import register_redirect

__all__ = ["follow_callback", "loopback_certificate", "press", "sandbox_env", "start"]


def sandbox_env(sandbox: SlackSandbox) -> dict[str, str]:
    return {
        "CXSLACK_SLACK_API_URL": sandbox.api_url,
        "CXSLACK_SLACK_AUTHORIZE_URL": sandbox.authorize_url,
        "CXSLACK_SLACK_CLIENT_ID": CLIENT_ID,
        "CXSLACK_SLACK_CLIENT_SECRET": CLIENT_SECRET,
    }


@dataclass
class Flow:
    """`cxslack …authorize…` running in a subprocess, with its announced authorize URL."""

    proc: subprocess.Popen[str]
    url: str
    stderr_head: str

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        from tests.conftest import scan

        out, err = self.proc.communicate(timeout=timeout)
        scan("cxslack (oauth flow)", out, self.stderr_head + err)
        return self.proc.returncode, out, self.stderr_head + err


def start(args: list[str], env: dict[str, str], stdin: Any = subprocess.DEVNULL) -> Flow:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stderr is not None
    head = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        head += line
        if line.startswith("http://") or line.startswith("https://"):
            return Flow(proc, line.strip(), head)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"no authorize URL announced\nstdout: {out}\nstderr: {head}{err}")


def press(authorize_url: str, decision: str = "allow", *, register: bool = True) -> str:
    """The browser at the authorize page: press Allow (or Deny), return the redirect's Location.
    With `register` the callback URL is first registered in the sandbox app's Redirect URLs
    (tests/sandbox_fixture.py); without it, the URL must have been registered already."""
    if register:
        register_redirect(authorize_url)
    return authorize.press(authorize_url, decision)


def loopback_certificate() -> Path:
    """cxslack's own certificate for https://localhost callbacks, in the test's CXSLACK_HOME."""
    from cxslack.oauth.tls import CERT_FILE
    from cxslack.store import Store

    return Store().paths.state_dir / "tls" / CERT_FILE


def follow_callback(location: str, cert: Path | None = None) -> httpx.Response:
    """Land on the callback; an https one is trusted through `cert` (default: cxslack's own)."""
    import ssl

    verify: Any = True
    if location.startswith("https://"):
        verify = ssl.create_default_context(cafile=str(cert or loopback_certificate()))
    return httpx.get(location, verify=verify, timeout=30)
