#!/usr/bin/env bash
# Device check for the GPU agent, on a real NVIDIA host (about 2 minutes, no network needed).
#   bash bench/gpu_device_check.sh            results in $OUT (default ./out/gpu-device-check)
# 1. makes sure pynvml + prometheus_client import (else installs them from ./.whl wheels:
#      pip download -d .whl nvidia-ml-py prometheus-client   # beforehand, on a networked machine)
# 2. `finops-agent --once` on the real GPUs (snapshot: metrics, GPM support, sample latency)
# 3. NVML per-reading latency over 300 readings of all GPUs (p50/p95/max, ms)
# 4. the agent's CPU share and RSS at 1 Hz for 60 s (bench/agent_overhead.py --real-nvml)
# Everything goes to $OUT/: once.json, latency.json, overhead.json/.txt, summary.txt, logs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$PWD/out/gpu-device-check}"
mkdir -p "$OUT"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
summary="$OUT/summary.txt"
log() { printf '%s\n' "$*" | tee -a "$summary"; }
: > "$summary"
log "gpu_device_check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader >"$OUT/nvidia-smi.csv" 2>&1 \
  && log "nvidia-smi: $(wc -l <"$OUT/nvidia-smi.csv") GPU(s): $(cut -d, -f2 "$OUT/nvidia-smi.csv" | sort -u | tr '\n' ';')" \
  || log "nvidia-smi failed: $(head -c 300 "$OUT/nvidia-smi.csv")"

# 1. dependencies
if ! "$PY" -c 'import pynvml, prometheus_client' 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    log "installing agent deps from .whl/"
    "$PY" -m pip install -q --no-index --find-links .whl nvidia-ml-py prometheus-client >>"$OUT/pip.log" 2>&1 \
      || { "$PY" -m venv "$OUT/venv" && PY="$OUT/venv/bin/python" \
           && "$PY" -m pip install -q --no-index --find-links .whl nvidia-ml-py prometheus-client >>"$OUT/pip.log" 2>&1; }
  fi
fi
if ! "$PY" -c 'import pynvml, prometheus_client' 2>>"$OUT/pip.log"; then
  log "FAIL: pynvml/prometheus_client not importable with $PY and no usable wheels in .whl/ (see pip.log)"
  exit 1
fi
log "python: $("$PY" -c 'import sys, pynvml; print(sys.version.split()[0], "nvidia-ml-py", getattr(pynvml, "__version__", "?"))' 2>/dev/null)"

# 2. snapshot
if timeout 60 "$PY" -m agents.cli --once >"$OUT/once.json" 2>"$OUT/once.log"; then
  log "once: $("$PY" - "$OUT/once.json" <<'EOF'
import json, sys
snap = json.load(open(sys.argv[1]))
gpus = snap["gpus"]
def present(key):
    return sum(1 for g in gpus if g.get(key) is not None)
print(f"{len(gpus)} GPU(s), driver {snap['driver_version']}, GPM on {snap['gpm_gpus']}, "
      f"latency {snap['sample_latency_ms']} ms; present: util {present('gpu_util_percent')}, "
      f"power {present('power_watts')}, sm_active {present('sm_active_ratio')}, "
      f"tensor {present('tensor_active_ratio')}, ecc {present('ecc_uncorrected_volatile')}")
EOF
)"
else
  log "FAIL: finops-agent --once exited $? ($(tail -c 400 "$OUT/once.log"))"
fi

# 3. NVML latency per reading of all GPUs
timeout 60 "$PY" - "$OUT/latency.json" >>"$summary" 2>"$OUT/latency.log" <<'EOF'
import json, statistics, sys, time
from agents.replay import sample_to_json
from agents.nvml import NvmlSampler
sampler = NvmlSampler()
gpus = sampler.start()
sampler.sample()
times = []
for _ in range(300):
    t0 = time.perf_counter()
    samples = sampler.sample()
    times.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.02)
times.sort()
result = {
    "gpus": len(gpus),
    "gpm_gpus": sampler.gpm_gpus(),
    "readings": len(times),
    "ms_p50": round(statistics.median(times), 3),
    "ms_p95": round(times[int(0.95 * len(times)) - 1], 3),
    "ms_max": round(times[-1], 3),
    "ms_per_gpu_p50": round(statistics.median(times) / max(1, len(gpus)), 3),
    "last_reading": [sample_to_json(s) for s in samples],
}
sampler.shutdown()
json.dump(result, open(sys.argv[1], "w"), indent=2, default=str)
print(f"nvml latency per reading of all {result['gpus']} GPUs: p50 {result['ms_p50']} ms, "
      f"p95 {result['ms_p95']} ms, max {result['ms_max']} ms ({result['ms_per_gpu_p50']} ms/GPU)")
EOF
[[ $? -eq 0 ]] || log "FAIL: latency measurement ($(tail -c 400 "$OUT/latency.log"))"

# 4. agent overhead at 1 Hz with the real NVML
timeout 120 "$PY" bench/agent_overhead.py --real-nvml --seconds 60 --warmup 5 --json "$OUT/overhead.json" \
  >"$OUT/overhead.txt" 2>&1
rc=$?
cat "$OUT/overhead.txt" >>"$summary"
[[ $rc -le 1 ]] || log "FAIL: overhead bench exited $rc"
log "done $(date -u +%FT%TZ)"
cat "$summary"
