"""The type token a component registers with, in a Pulumi program and under the provider host.

`component_provider_host` (components/__main__.py) serves every hosted component in one
`index` module, named by class: its schema says `finops:index:AwsGpuTrainingFleet`, and the
engine records the component under the type it registers with. A component must therefore
register with the schema's token while hosted, and with its own `finops:<cloud>:<Type>` in a
Python program (STYLE.md).
"""

from pulumi.provider.experimental import host

PROVIDER_NAME = "finops"
"""The package name served by the host: the type-token prefix `finops:<module>:<Type>`."""


def type_token(cls: type, cloud_token: str) -> str:
    """`cloud_token` (`finops:gcp:GpuTrainingFleet`) in a Pulumi program; under the provider
    host, `finops:index:<ClassName>`, the token the host's schema gives the class."""
    return f"{PROVIDER_NAME}:index:{cls.__name__}" if host.is_hosting else cloud_token
