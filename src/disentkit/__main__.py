"""``python -m disentkit`` runs the command line."""

from disentkit.cli import main

main()
