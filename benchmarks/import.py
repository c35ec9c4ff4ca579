"""`cxslack connectors import` cost: 1,000, 5,000 and 20,000 connectors into a fresh store.

Each size is a Notification Center export (`export --format coralogix`'s shape; every fifth
connector with a cases override) imported by the real CLI in a subprocess, into a store holding
one integration. Reported: seconds per size, and the growth ratio against 1,000 measured in the
same run. Linear means 20,000 take at most 25x the time of 1,000 (20x the work plus start-up
noise); the target is 20,000 in at most 5 s. A second import of the largest file (everything
unchanged) shows the cost when nothing is written.

    python benchmarks/import.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, timed

TEMPLATE = '{% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}'


def export_file(path: Path, count: int, integration_id: str) -> None:
    def connector(n: int) -> dict[str, object]:
        body: dict[str, object] = {
            "id": f"route-{n:05d}",
            "name": f"Route {n:05d}",
            "description": f"Team route {n}",
            "type": "SLACK",
            "connectorConfig": {"fields": [
                {"fieldName": "integrationId", "value": integration_id},
                {"fieldName": "channel", "value": f"alerts-{n % 300:03d}"},
                {"fieldName": "fallbackChannel", "value": "ops-fallback"},
            ]},
            "configOverrides": [{"entityType": "CASES", "fields": [{"fieldName": "channel", "template": TEMPLATE}]}]
            if n % 5 == 0 else [],
        }  # fmt: skip
        return {"connector": body}

    path.write_text(json.dumps([connector(n) for n in range(count)]))


def one_size(count: int, workdir: Path) -> tuple[float, float]:
    """(seconds to import `count` connectors into a fresh store, seconds to import them again)."""
    home = workdir / f"home-{count}"
    env = {"CXSLACK_HOME": str(home), "CI": "1"}
    os.environ["CXSLACK_HOME"] = str(home)
    from cxslack.registry import NewIntegration, Registry

    integration = Registry().add(NewIntegration(name="Payments", consent_us_data_transfer=True))
    path = workdir / f"connectors-{count}.json"
    export_file(path, count, integration.id)
    first = timed(["connectors", "import", str(path), "-o", "json"], env)
    again = timed(["connectors", "import", str(path), "-o", "json"], env)
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxslack-import-bench-") as tmp:
        results = {count: one_size(count, Path(tmp)) for count in args.sizes}
    base = results[args.sizes[0]][0]
    rows = [(f"{count:,} connectors", f"{first:.2f} s ({first / base:.1f}x the {args.sizes[0]:,}); "
             f"again, all unchanged: {again:.2f} s") for count, (first, again) in results.items()]  # fmt: skip
    largest = args.sizes[-1]
    growth = results[largest][0] / base
    size_ratio = largest / args.sizes[0]
    rows.append(("growth", f"{growth:.1f}x for {size_ratio:.0f}x the connectors "
                 f"({'linear' if growth <= size_ratio * 1.25 else 'worse than linear'}: target <= {size_ratio * 1.25:.0f}x)"))  # fmt: skip
    rows.append(("target", f"{largest:,} in <= 5 s: {'met' if results[largest][0] <= 5 else 'missed'}"))
    report(rows)


if __name__ == "__main__":
    main()
