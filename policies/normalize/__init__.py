"""Adapters' first step: turn what a tool hands over into `aifinops.policies.model.Resource`.

- `wire`: Pulumi wire-named inputs (the offline engine, the CrossGuard pack). The core the
  others reshape into.
- `terraform`: checkov's Terraform (HCL or plan) resource conf, snake_case, values in lists.
- `cloudformation`: CloudFormation `Properties`, PascalCase, intrinsics as unknowns.
"""

from aifinops.policies.normalize.wire import UNKNOWN, normalize

__all__ = ["UNKNOWN", "normalize"]
