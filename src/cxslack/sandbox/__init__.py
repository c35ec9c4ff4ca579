"""The built-in Slack sandbox: a local Slack Web API emulator for tests, benchmarks and the demo.

Typical use (tests use the `sandbox` fixture from tests/sandbox_fixture.py)::

    with SlackSandbox() as sandbox:
        token = sandbox.issue_token()["access_token"]
        client = WebClient(token=token, base_url=sandbox.api_url)
        client.chat_postMessage(channel="#alerts", text="hi")
"""

from cxslack.sandbox.events import SIGNING_SECRET
from cxslack.sandbox.server import SlackSandbox
from cxslack.sandbox.workspace import CLIENT_ID, CLIENT_SECRET, TEAM_ID, Workspace

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SIGNING_SECRET",
    "TEAM_ID",
    "SlackSandbox",
    "Workspace",
]
