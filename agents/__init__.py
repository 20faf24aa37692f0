"""finops-agent: what runs on a GPU host. Light dependencies, no Pulumi, nothing of finops."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The distribution's version (pyproject.toml, the one place it is written); the agent
    # imports nothing of `finops`, so it reads the metadata itself.
    __version__ = version("aifinops")
except PackageNotFoundError:  # a source tree run without installing it (no metadata to read)
    __version__ = "0+unknown"
