"""The `swarmbalancer` command line (Typer + Rich)."""
