"""Arguments the TPU components read alike: the slice for the model's memory
(`pick_slice`, also `finops:gcp:TpuBatchInference`'s), and for the two serving endpoints
(`finops:gcp:TpuInferenceEndpoint` on Vertex AI, `finops:gcp:GkeTpuInferenceEndpoint` on
GKE) the Hugging Face model id, the replica bounds and the container's variables. Each raises
ValueError naming the field, the value and what is allowed."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from aifinops import catalog
from aifinops.components import _args
from aifinops.errors import CatalogError

MAX_REPLICAS = 100
# the TPU VM software version of each generation (Cloud TPU "TPU software versions")
RUNTIME_VERSIONS = {
    "TPU-v5e": "v2-alpha-tpuv5-lite",
    "TPU-v6e": "v2-alpha-tpuv6e",
    "TPU-v5p": "v2-alpha-tpuv5",
}
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
    return pick_slice(
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


def pick_slice(
    where: str,
    region: str,
    accelerator_type: str | None,
    accelerator: str | None,
    model_memory_gib: float | None,
    spot: bool,
) -> catalog.InstanceInfo:
    """The slice `accelerator_type` names, or the cheapest of generation `accelerator` in
    `region` with `model_memory_gib` of HBM (exactly one of the two)."""
    if bool(accelerator_type) == bool(accelerator):
        raise ValueError(
            f"{where}: give exactly one of accelerator_type or accelerator "
            f"(got accelerator_type={accelerator_type!r}, accelerator={accelerator!r})"
        )
    tpu_types = catalog.instance_types(cloud="gcp", service="tpu")
    if accelerator_type:
        try:
            info = catalog.lookup(accelerator_type, region, cloud="gcp")
        except CatalogError as exc:
            raise ValueError(
                f"{where}: accelerator_type {accelerator_type!r}: {exc}; "
                f"TPU types: {', '.join(tpu_types)}"
            ) from None
        if info.service != "tpu":
            raise ValueError(
                f"{where}: accelerator_type {accelerator_type!r} is a {info.service} machine, "
                f"not a TPU; TPU types: {', '.join(tpu_types)}"
            )
        return info
    assert accelerator is not None
    try:
        offers = catalog.cheapest(accelerator, 1, spot=spot, cloud="gcp", service="tpu")
    except CatalogError as exc:
        raise ValueError(f"{where}: accelerator {accelerator!r}: {exc}") from None
    if not offers:
        raise ValueError(
            f"{where}: accelerator {accelerator!r} is not a TPU generation; one of "
            f"{', '.join(sorted(RUNTIME_VERSIONS))}"
        )
    here = [i for i in offers if i.region == region]
    if not here:
        raise ValueError(
            f"{where}: no {accelerator} TPU in {region}; offered in: "
            f"{', '.join(sorted({i.region for i in offers}))}"
        )
    need = model_memory_gib or 0.0
    fitting = [i for i in here if i.node_accelerator_memory_gib >= need]
    if not fitting:
        largest = max(here, key=lambda i: i.node_accelerator_memory_gib)
        raise ValueError(
            f"{where}: model_memory_gib {need:g} does not fit one {accelerator} slice in "
            f"{region} (largest: {largest.instance_type}, "
            f"{largest.node_accelerator_memory_gib:g} GiB)"
        )
    return fitting[0]
