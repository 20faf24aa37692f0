"""Arguments the two TPU serving endpoints read alike (`finops:gcp:TpuInferenceEndpoint` on
Vertex AI, `finops:gcp:GkeTpuInferenceEndpoint` on GKE): the Hugging Face model id, the TPU
slice for the model's memory, the replica bounds and the container's variables. Each raises
ValueError naming the field, the value and what is allowed."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from aifinops import catalog
from aifinops.components import _args
from aifinops.components.gcp.tpu_batch import _pick_slice

MAX_REPLICAS = 100
# Hugging Face model ids: <owner>/<name> (huggingface_hub's repo id rules)
MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def model_id(raw: Mapping[str, Any], where: str) -> str:
    """The required `model_id`, a Hugging Face id."""
    found = str(_args.require(raw, "model_id", where=where))
    if not MODEL_ID.match(found):
        raise _args.invalid("model_id", found, "a Hugging Face id <owner>/<model>", where=where)
    return found


def model_memory(raw: Mapping[str, Any], where: str) -> float | None:
    """`model_memory_gib`, when given."""
    if raw.get("model_memory_gib") is None:
        return None
    return _args.number(
        "model_memory_gib", raw["model_memory_gib"], "GiB above 0", above=0, where=where
    )


def tpu_slice(raw: Mapping[str, Any], where: str, region: str, spot: bool) -> catalog.InstanceInfo:
    """The slice of `accelerator_type` (a catalog slice or its machine type) or the cheapest
    of `accelerator` holding `model_memory_gib`."""
    requested = raw.get("accelerator_type")
    if requested:
        requested = catalog.tpu_type_of_machine(str(requested)) or requested
    return _pick_slice(
        where, region, requested, raw.get("accelerator"), model_memory(raw, where), spot
    )


def check_memory_fits(raw: Mapping[str, Any], where: str, info: catalog.InstanceInfo) -> None:
    """`model_memory_gib` fits the slice's HBM."""
    memory = model_memory(raw, where)
    if memory is not None and memory > info.node_accelerator_memory_gib:
        raise _args.invalid(
            "model_memory_gib",
            memory,
            f"at most the {info.node_accelerator_memory_gib:g} GiB of HBM of "
            f"{info.instance_type} (or a larger slice)",
            where=where,
        )


def replica_bounds(raw: Mapping[str, Any], where: str) -> tuple[int, int]:
    """(`replicas_min`, default 1; `replicas_max`, default the minimum), at most 100."""
    low = _args.int_arg(where, dict(raw), "replicas_min", 1, 1, MAX_REPLICAS)
    high = _args.int_arg(where, dict(raw), "replicas_max", low, low, MAX_REPLICAS)
    return low, high


def environment(
    raw: Mapping[str, Any], where: str, refused: Callable[[str], str | None]
) -> dict[str, str]:
    """`environment` as strings; a key that is no variable name, or one `refused` answers
    with the reason for, is refused."""
    found = {str(k): str(v) for k, v in (raw.get("environment") or {}).items()}
    for key in found:
        if not ENV_KEY.match(key):
            raise _args.invalid(
                f"environment.{key}", key, "a variable name [A-Za-z_][A-Za-z0-9_]*", where=where
            )
        reason = refused(key)
        if reason:
            raise _args.invalid(f"environment.{key}", key, reason, where=where)
    return found
