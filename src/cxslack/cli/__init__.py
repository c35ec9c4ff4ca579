"""The command-line layer: Typer apps that parse, call the domain modules, and render."""
