"""The CrossGuard pack's entry point: `python -m pulumi.policy <engine-address> .` runs this file.

It serves the Analyzer protocol until the engine stops it; the adapter is `aifinops.policies.pack`.
"""

from aifinops.policies.pack import serve

serve()
