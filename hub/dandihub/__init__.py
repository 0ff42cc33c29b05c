"""DANDI Hub: the hub side (authenticators, spawner, config), the local archive and embedded mode."""

__version__ = "0.1.0"
