"""finops: the shared core (catalog, tags, config, cost model, rightsizing, offline engine, CLI)."""

__version__ = "0.1.0"
