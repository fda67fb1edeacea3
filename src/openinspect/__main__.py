"""``python -m openinspect`` runs the CLI."""

from openinspect.cli.main import main

main()
