"""`cxslack sandbox demo`, the README's first command, works end to end."""

from __future__ import annotations

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
