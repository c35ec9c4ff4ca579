"""Start-up cost of a JSON listing against a baseline of `python -c "import typer"`.

Builds a store of 100 integrations and 2,000 connectors, then measures in one run the median
wall time of `cxslack integrations list -o json`, `cxslack connectors list -o json` (when the
command exists), `cxslack --version`, and the baseline. Target: listing ≤ 1.5× the baseline.

    python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cxslack, median_wall, report


def build_store(home: Path, integrations: int = 100, connectors: int = 2000) -> None:
    os.environ["CXSLACK_HOME"] = str(home)
    from cxslack.model import Integration
    from cxslack.store import Store

    store = Store()
    ids = [str(uuid.uuid4()) for _ in range(integrations)]
    with store.transaction() as docs:
        docs.config["integrations"] = {
            ident: Integration(id=ident, name=f"integration-{n:03d}").to_toml() for n, ident in enumerate(ids)
        }
        docs.config["connectors"] = {
            f"connector-{n:04d}": {
                "name": f"Connector {n}",
                "description": "",
                "integration": ids[n % integrations],
                "channel": f"alerts-{n % 300}",
                "fallback_channel": "ops-fallback",
                "created_at": "2026-11-29T00:00:00Z",
                "updated_at": "2026-11-29T00:00:00Z",
            }
            for n in range(connectors)
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        build_store(home)
        env = {"CXSLACK_HOME": str(home)}
        baseline = median_wall([sys.executable, "-c", "import typer"], args.runs)
        listing = median_wall(cxslack("integrations", "list", "-o", "json"), args.runs, env)
        version = median_wall(cxslack("--version"), args.runs, env)
        rows = [
            ("baseline: python -c 'import typer'", f"{baseline * 1000:7.1f} ms"),
            (
                "cxslack integrations list -o json",
                f"{listing * 1000:7.1f} ms  ({listing / baseline:.2f}x baseline, target <= 1.5x)",
            ),
            ("cxslack --version", f"{version * 1000:7.1f} ms  ({version / baseline:.2f}x baseline)"),
        ]
        has_connectors = subprocess.run(
            cxslack("connectors", "--help"), env={**os.environ, **env}, capture_output=True
        )
        if has_connectors.returncode == 0:
            conn = median_wall(cxslack("connectors", "list", "-o", "json"), args.runs, env)
            rows.append(
                (
                    "cxslack connectors list -o json",
                    f"{conn * 1000:7.1f} ms  ({conn / baseline:.2f}x baseline)",
                )
            )
        report(rows)


if __name__ == "__main__":
    main()
