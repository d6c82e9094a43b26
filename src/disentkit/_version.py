"""The package version, in a module of its own so that every layer can read it without
importing the package's public API (``disentkit/__init__.py`` imports the metrics)."""

__version__ = "0.1.0"
