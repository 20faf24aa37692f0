"""Serve the installed aifinops components to a program in another language (the same host
as the repository's components/__main__.py, from the wheel)."""

from pulumi.provider.experimental import component_provider_host

from aifinops.components.__main__ import hosted_components
from aifinops.components._hosting import PROVIDER_NAME

if __name__ == "__main__":
    component_provider_host(name=PROVIDER_NAME, components=hosted_components())
