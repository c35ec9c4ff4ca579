"""`connectors import`: the whole file checked first, applied all or nothing in one transaction,
one summary line (a progress bar on a terminal), both export formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import Cli, add_integration
from .terminal import on_terminal


def nc(ident: str, name: str, integration: str, channel: str = "alerts") -> dict[str, Any]:
    """One connector in Notification Center's shape."""
    return {"connector": {"id": ident, "name": name, "type": "SLACK", "connectorConfig": {"fields": [
        {"fieldName": "integrationId", "value": integration}, {"fieldName": "channel", "value": channel},
        {"fieldName": "fallbackChannel", "value": "ops-fallback"}]}}}  # fmt: skip


def write(tmp_path: Path, doc: Any) -> str:
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps(doc))
    return str(path)


def ids(cli: Cli) -> list[str]:
    return sorted(c["id"] for c in cli.ok("connectors", "list", "-o", "json").json()["connectors"])


def test_a_clash_anywhere_in_the_file_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    payments = add_integration(cli, "Payments")["id"]
    cli.ok("connectors", "create", "Existing", "--integration", "payments", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    doc = [
        nc("a", "A", payments),
        nc("b", "B", payments),
        nc("c", "existing", payments),
        nc("d", "D", "no-such"),
    ]
    run = cli("connectors", "import", write(tmp_path, doc), "-o", "json")
    assert run.exit_code == 2
    message = run.json()["error"]["message"]
    assert "2 problem(s), so nothing was imported" in message
    assert "connectors.json[2]: name 'existing' belongs to existing connector existing" in message
    assert "connectors.json[3]: no integration named or with id 'no-such'" in message
    assert ids(cli) == ["existing"]  # a and b were not created either


def test_one_id_twice_in_the_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    payments = add_integration(cli, "Payments")["id"]
    run = cli("connectors", "import", write(tmp_path, [nc("a", "A", payments), nc("a", "A again", payments)]))
    assert run.exit_code == 2 and "connectors.json[1]: id 'a' is also at" in run.stderr
    twice = cli(
        "connectors", "import", write(tmp_path, [nc("a", "Same", payments), nc("b", "same", payments)])
    )
    assert twice.exit_code == 2 and "name 'same' is also used at" in twice.stderr
    assert ids(cli) == []


def test_a_summary_line_not_a_line_per_connector(cli: Cli, tmp_path: Path) -> None:
    payments = add_integration(cli, "Payments")["id"]
    cli.ok("connectors", "import", write(tmp_path, [nc("a", "A", payments)]))
    doc = [nc("a", "A", payments, "alerts-2"), nc("b", "B", payments), nc("c", "C", payments)]
    run = cli.ok("connectors", "import", write(tmp_path, doc))
    assert run.stderr.strip().splitlines() == [
        f"✔ Imported 3 connector(s) from {tmp_path / 'connectors.json'}: 2 created, 1 updated, 0 unchanged."
    ]
    again = cli.ok("connectors", "import", write(tmp_path, doc), "-o", "json").json()
    assert again["summary"] == {"total": 3, "created": 0, "updated": 0, "unchanged": 3}


def test_renaming_within_one_import_is_not_a_clash(cli: Cli, tmp_path: Path) -> None:
    payments = add_integration(cli, "Payments")["id"]
    cli.ok("connectors", "import", write(tmp_path, [nc("a", "First", payments), nc("b", "Second", payments)]))
    swapped = [nc("a", "Second", payments), nc("b", "First", payments)]  # both replaced at once: fine
    cli.ok("connectors", "import", write(tmp_path, swapped))
    names = {c["id"]: c["name"] for c in cli.ok("connectors", "list", "-o", "json").json()["connectors"]}
    assert names == {"a": "Second", "b": "First"}


def test_its_own_cxslack_export_imports_back(cli: Cli, tmp_path: Path) -> None:
    add_integration(cli, "Payments")
    cli.ok("connectors", "create", "Payments on-call", "--integration", "payments", "--channel", "alerts",
           "--fallback-channel", "ops-fallback", "--case-reply-mode", "thread-broadcast",
           "--override", "cases=db-cases")  # fmt: skip
    before = cli.ok("connectors", "show", "payments-on-call", "-o", "json").json()["connector"]
    exported = cli.ok("connectors", "export", "--format", "cxslack").stdout
    path = tmp_path / "cxslack.json"
    path.write_text(exported)
    cli.ok("connectors", "remove", "payments-on-call", "--yes")
    run = cli.ok("connectors", "import", str(path), "-o", "json").json()
    assert run["imported"] == [{"connector": "payments-on-call", "action": "created"}]
    after = cli.ok("connectors", "show", "payments-on-call", "-o", "json").json()["connector"]
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    one = cli.ok("connectors", "export", "payments-on-call", "--format", "cxslack").stdout
    path.write_text(one)
    assert cli.ok("connectors", "import", str(path), "-o", "json").json()["summary"]["unchanged"] == 1


def test_a_progress_bar_on_a_terminal_and_none_when_piped(cli: Cli, tmp_path: Path) -> None:
    payments = add_integration(cli, "Payments")["id"]
    path = write(tmp_path, [nc(f"c{n}", f"C {n}", payments) for n in range(200)])
    run = on_terminal("connectors", "import", path, stream="stderr", env={"NO_COLOR": "1"})
    assert run.exit_code == 0
    terminal = run.terminal
    assert "Importing connectors" in terminal and "/200" in terminal
    assert "Imported 200 connector(s)" in terminal
    piped = cli.ok("connectors", "import", path)
    assert "Importing connectors" not in piped.stderr
