"""`cxslack config …`: where cxslack keeps its files."""

from cxslack.cli.common import OutputOpt, command_group
from cxslack.cli.render import Output, OutputFormat
from cxslack.store import Paths

app = command_group("Inspect cxslack's local configuration.")


@app.command("path")
def path(output: OutputOpt = OutputFormat.TABLE) -> None:
    """Print where config, credentials and state live (CXSLACK_HOME overrides all)."""
    paths = Paths.from_env()
    doc = {
        "config_dir": str(paths.config_dir),
        "config_file": str(paths.config_file),
        "credentials_file": str(paths.credentials_file),
        "state_dir": str(paths.state_dir),
    }
    out = Output(output)
    out.emit(
        doc,
        lambda: out.fields(
            [
                ("Config", doc["config_file"]),
                ("Credentials", doc["credentials_file"]),
                ("State", doc["state_dir"]),
            ]
        ),
    )
