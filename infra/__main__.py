"""The Pulumi program: read the stack's `finops:` config, tag everything, compose components.

Thin on purpose: what exists is decided by `Pulumi.<stack>.yaml`, how it is built by the
components. Each cloud's composition lives in `build_<cloud>.py` beside this file and is
imported only when the stack uses that cloud (a provider SDK costs seconds to import).
"""

import importlib

import pulumi

from aifinops.config import from_pulumi_config
from aifinops.tagging import tagging_transform

config = from_pulumi_config()

# Registered before any resource so that every taggable resource gets the stack's tags in its
# inputs (where the policy pack and checkov look), as the engine applies stack transforms.
pulumi.runtime.register_resource_transform(tagging_transform(config.tags.as_dict()))

for cloud in config.clouds():
    builder = importlib.import_module(f"build_{cloud}")
    for key, value in builder.build(config).items():
        pulumi.export(key, value)
