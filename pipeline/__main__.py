"""``python -m pipeline`` runs the ``compress`` CLI."""

from pipeline.cli import main

main()
