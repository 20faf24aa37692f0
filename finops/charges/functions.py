"""Functions' invocations (their schedules' calls and the usage file's) and Cloud Scheduler jobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aifinops.catalog import charges as prices
from aifinops.charges.base import (
    DAYS_PER_MONTH,
    Charge,
    ChargeContext,
    money,
    num,
    unknown,
)
from aifinops.config import HOURS_PER_MONTH

if TYPE_CHECKING:
    from aifinops.engine import EngineResource


_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def _field_count(text: str, low: int, high: int) -> int | None:
    """How many values a cron field matches ('*', '*/n', 'a-b', 'a,b', numbers)."""
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit():
                return None
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                return None
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
        else:
            return None
        values.update(range(start, end + 1, step))
    return len(values)


def calls_per_month(schedule: str) -> float | None:
    """Runs a month of an EventBridge `rate(...)`/`cron(...)` or a unix cron schedule, or
    None when the schedule restricts days (not counted here)."""
    schedule = schedule.strip()
    match = _RATE.fullmatch(schedule)
    if match:
        minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2).rstrip("s")]
        return HOURS_PER_MONTH * 60 / minutes
    if schedule.startswith("cron(") and schedule.endswith(")"):
        fields = schedule[5:-1].split()
    else:
        fields = schedule.split()
    if len(fields) < 5 or any(f not in ("*", "?") for f in fields[2:5]):
        return None
    per_hour = _field_count(fields[0], 0, 59)
    per_day = _field_count(fields[1], 0, 23)
    if per_hour is None or per_day is None:
        return None
    return per_hour * per_day * DAYS_PER_MONTH


def _schedules_of(function: EngineResource, ctx: ChargeContext) -> list[tuple[str, float]]:
    """(schedule resource, calls a month) of the schedules that invoke `function`."""
    found: list[tuple[str, float]] = []
    arn = function.outputs.get("arn")
    component = ctx.component_of(function)
    for resource in ctx.run.custom_resources():
        if resource.type == "aws:cloudwatch/eventTarget:EventTarget":
            if arn is None or resource.inputs.get("arn") != arn:
                continue
            rule = ctx.related_inputs(
                resource.inputs.get("rule"), "aws:cloudwatch/eventRule:EventRule"
            )
            expression = (rule or {}).get("scheduleExpression")
            if expression:
                calls = calls_per_month(str(expression))
                found.append((str(expression), calls if calls is not None else -1.0))
        elif resource.type == "gcp:cloudscheduler/job:Job":
            # the job's target URI is the function's, unknown until deployed: the job of the
            # same component is the one that calls it
            if component is None or ctx.component_of(resource) != component:
                continue
            calls = calls_per_month(str(resource.inputs.get("schedule") or ""))
            found.append((str(resource.inputs.get("schedule")), calls if calls else -1.0))
    return found


_GCF_DEFAULT_CPU = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1.0, 4096: 2.0}
"""Cloud Run functions: the vCPU a memory size gets when no CPU is set."""


def _memory_mib(text: Any) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(M|Mi|G|Gi)", str(text or "256M"))
    if not match:
        return None
    value = float(match.group(1))
    return value * 1024 if match.group(2).startswith("G") else value


def function_charge(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "gcp" if resource.type.startswith("gcp:") else "aws"
    type_ = f"{cloud}:charge:Invocations"
    region = ctx.region_of(resource)
    schedules = _schedules_of(resource, ctx)
    if any(calls < 0 for _, calls in schedules):
        yield unknown(
            resource,
            "invocations",
            type_,
            "a schedule restricts days: "
            + ", ".join(s for s, c in schedules if c < 0)
            + " (not counted)",
        )
        return
    scheduled = sum(calls for _, calls in schedules)
    extra, extra_note = ctx.usage_note(resource, "invocations_per_month")
    duration_ms, duration_note = ctx.usage_note(resource, "mean_duration_ms")
    calls = scheduled + extra
    where = (
        f"{scheduled:,.0f} scheduled ({', '.join(s for s, _ in schedules)})"
        if schedules
        else "0 scheduled"
    )
    if cloud == "aws":
        memory_gb = (num(resource.inputs.get("memorySize")) or 128.0) / 1024
        arch = (resource.inputs.get("architectures") or ["x86_64"])[0]
        request = prices.unit_price("aws", region, "lambda-requests")
        compute = prices.unit_price("aws", region, f"lambda-gb-second-{arch}")
        if request is None or compute is None:
            yield unknown(resource, "invocations", type_, f"no Lambda prices for {region}")
            return
        compute_usd = calls * duration_ms / 1000 * memory_gb * compute.usd
        basis_compute = (
            f"{duration_ms:g} ms mean{duration_note} x {memory_gb:g} GB x "
            f"${compute.usd:.10f}/GB-s ({arch})"
        )
    else:
        config = resource.inputs.get("serviceConfig") or {}
        mib = _memory_mib(config.get("availableMemory"))
        cpu = num(config.get("availableCpu")) or _GCF_DEFAULT_CPU.get(int(mib or 0))
        request = prices.unit_price("gcp", region, "cloud-run-requests")
        vcpu = prices.unit_price("gcp", region, "cloud-run-vcpu-second")
        gib = prices.unit_price("gcp", region, "cloud-run-gib-second")
        if mib is None or cpu is None or request is None or vcpu is None or gib is None:
            yield unknown(
                resource, "invocations", type_, f"no Cloud Run prices or CPU size for {region}"
            )
            return
        seconds = calls * duration_ms / 1000
        compute_usd = seconds * (cpu * vcpu.usd + mib / 1024 * gib.usd)
        basis_compute = (
            f"{duration_ms:g} ms mean{duration_note} x ({cpu:g} vCPU x ${vcpu.usd}/vCPU-s + "
            f"{mib / 1024:g} GiB x ${gib.usd}/GiB-s)"
        )
    requests_usd = calls / 1e6 * request.usd
    basis = (
        f"{calls:,.0f} invocations a month: {where} + {extra:,.0f} more{extra_note}; "
        f"requests at ${request.usd:.2f}/1M = {money(requests_usd)}; run time {basis_compute} = "
        f"{money(compute_usd)} (free tier not subtracted)"
    )
    yield Charge(resource, "invocations", type_, requests_usd + compute_usd, basis)


def scheduler_job(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    price = prices.unit_price("gcp", region, "cloud-scheduler-job")
    if price is None:
        yield unknown(resource, "job", "gcp:charge:SchedulerJob", f"no price for {region}")
        return
    yield Charge(
        resource,
        "job",
        "gcp:charge:SchedulerJob",
        price.usd,
        f"Cloud Scheduler job: ${price.usd:.2f}/month (the 3 free jobs per billing account "
        "not subtracted)",
    )
