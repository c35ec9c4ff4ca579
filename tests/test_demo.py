"""`cxslack sandbox demo`, the README's first command, works end to end."""

from __future__ import annotations

import re

from .conftest import run_process


def test_the_demo_runs_every_step_with_the_real_commands() -> None:
    run = run_process("sandbox", "demo", "-o", "json", timeout=300)
    assert run.exit_code == 0, run.stderr[-3000:]
    doc = run.json()
    assert doc["ok"] is True
    commands = [s["command"] for s in doc["steps"]]
    for expected in (
        "cxslack integrations add",
        "cxslack connectors test",
        "cxslack connectors migrate",
        "cxslack doctor",
    ):
        assert any(c.startswith(expected) for c in commands), expected
    assert [s["exit_code"] for s in doc["steps"] if s["command"].startswith("cxslack doctor")] == [1, 0]
    assert "[browser] opened the authorize page and selected Allow" in run.stderr
    transcript = run.stderr
    numbers = [int(n) for n in re.findall(r"^── (\d+)\. ", transcript, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # consecutive, none skipped
    # each command's output reads in the order it was written: the stderr line "Created
    # connector …" comes after the connector's fields on stdout, not before them
    create = transcript[transcript.index("$ cxslack connectors create 'Payments on-call'") :]
    assert create.index("Fallback channel:") < create.index("Created connector Payments on-call")
    add = transcript[transcript.index("$ cxslack integrations add --name Payments") :]
    assert add.index("Created integration Payments") < add.index("Granted scopes:")
    assert "✔ exit 1, as expected: doctor exits 1 when a check fails" in transcript
    # one acknowledge from Slack: Bob's click, acted on by `cxslack listen` as Bob
    assert "[slack] Bob clicked Acknowledge" in transcript
    assert re.search(r"block_actions/cxslack_case_acknowledge C0PAYMENTSALERTS \S+ → handled", transcript)
    assert "Coralogix got 1 call: POST /cases/acknowledged/v1" in transcript
    assert "buttons now Assign to me, Resolve" in transcript
    assert "Acknowledged from Slack by Bob Brown (bob@example.com)" in transcript
    assert not re.search(r"✔ exit [1-9]\n", transcript)
