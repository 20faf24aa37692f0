"""finops: the shared core (catalog, tags, config, cost model, rightsizing, offline engine, CLI)."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "aifinops"
"""The distribution's name on the package index (`pip install aifinops`)."""

try:
    __version__ = version(DISTRIBUTION)  # the one place it is written: pyproject.toml
except PackageNotFoundError:  # a source tree run without installing it (no metadata to read)
    __version__ = "0+unknown"
