"""What the engine's input contract (finops/engine/contracts.py) costs a preview.

Runs the real program (infra/) in process on the dev stack and on a generated stack of about
200 resources (the preview benchmark's), and times the input check alone: the first check
of a run pays for reading each resource type's `*Args` class from its SDK (cached for the
process, as in one `finops preview`); a second check of the same resources shows the rest.
Then whole program runs with and without the check, alternating, for the relative cost.

    .venv/bin/python bench/contracts_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from preview_bench import stack_text  # noqa: E402

from aifinops.engine import contracts  # noqa: E402
from aifinops.engine.stack import run_stack  # noqa: E402


def measure(stack: str, runs: int) -> tuple[int, float, float]:
    """(custom resources, first check ms, repeated check ms), medians over `runs`."""
    firsts, repeats = [], []
    count = 0
    for _ in range(runs):
        _, _, run = run_stack(stack, ROOT)  # checks too: then forget what it read
        contracts.resource_class.cache_clear()
        contracts.args_class.cache_clear()
        contracts._getters.cache_clear()
        contracts._hint.cache_clear()
        contracts._required.cache_clear()
        custom = run.custom_resources()
        count = len(custom)
        start = time.perf_counter()
        assert contracts.check_resources(custom) == []
        firsts.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        contracts.check_resources(custom)
        repeats.append((time.perf_counter() - start) * 1000)
    return count, statistics.median(firsts), statistics.median(repeats)


def run_with_and_without(stack: str, runs: int) -> tuple[float, float]:
    """Median ms of a whole in-process run of the program with the check and without it,
    alternating, caches cleared before each run (imports are paid once, before)."""
    from aifinops import config as stack_config
    from aifinops.engine import run_program
    from aifinops.engine.stack import program_dir

    stack_file = stack_config.resolve_stack_file(stack, ROOT)
    raw = stack_config.read_stack_file(stack_file)
    regions = stack_config.parse(raw, source=str(stack_file)).regions
    timings: dict[bool, list[float]] = {True: [], False: []}
    run_stack(stack, ROOT)  # imports
    for _ in range(runs):
        for check in (True, False):
            contracts.resource_class.cache_clear()
            contracts.args_class.cache_clear()
            contracts._getters.cache_clear()
            contracts._hint.cache_clear()
            contracts._required.cache_clear()
            start = time.perf_counter()
            run_program(program_dir(ROOT), "bench", raw, regions, check_inputs=check)
            timings[check].append((time.perf_counter() - start) * 1000)
    return statistics.median(timings[True]), statistics.median(timings[False])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        generated = Path(folder) / "Pulumi.bench.yaml"
        generated.write_text(stack_text(fleets=8, endpoints=4))
        print(f"input contract, median of {args.runs} runs")
        print(f"{'stack':<10} {'resources':>9} {'first check':>12} {'again':>8}")
        for label, stack in (("dev", "dev"), ("generated", str(generated))):
            count, first, again = measure(stack, args.runs)
            print(f"{label:<10} {count:>9} {first:>9.1f} ms {again:>5.1f} ms")
        print("whole program run in process (imports paid before), median ms")
        print(f"{'stack':<10} {'checked':>9} {'unchecked':>10}")
        for label, stack in (("dev", "dev"), ("generated", str(generated))):
            checked, unchecked = run_with_and_without(stack, args.runs)
            print(f"{label:<10} {checked:>9.0f} {unchecked:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
