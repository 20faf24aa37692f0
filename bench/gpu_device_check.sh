#!/usr/bin/env bash
# Device check for the GPU agent on a bare NVIDIA host: the driver and a Python, no network.
#
#   bash bench/gpu_device_check.sh        figures in $OUT (default ./out/gpu-device-check)
#
# Brought beside the repository: bench/agent-bundle/ (build it on a networked machine with
# `.venv/bin/python bench/build_agent_bundle.py`; FINOPS_BUNDLE=DIR for another place).
# About 2 minutes (at most 5):
#  1. inventory and MIG state from `nvidia-smi --query-gpu`;
#  2. a Python the agent's wheel accepts (its Requires-Python) that the agent's user can run;
#     a venv with the agent installed from the bundle only (pip --no-index --require-hashes);
#  3. the agent runs as an unprivileged user, as the systemd unit does (as root: the
#     `finops-agent` system user, created if missing, or FINOPS_CHECK_USER); `--once` as that
#     user says which GPUs really read GPM, and as root for comparison;
#  4. phases: idle, load (bench/gpu_load.py: a PTX kernel through the CUDA driver API, on
#     every GPU not in MIG mode), cool-down; nvidia-smi and the agent (its --record trace)
#     read every second, the agent's CPU and RSS at 1 Hz, /metrics scraped under load;
#  5. bench/gpu_check_report.py compares agent and nvidia-smi within stated tolerances and
#     checks that utilisation, SM activity and power move with the load: figures.json.
# Exit: 0 every check passed (some may be "unavailable", e.g. GPM not permitted), 1 a check
# failed, 2 this host cannot run the check (what is missing is said).
# Test hooks (tests/agents/test_gpu_device_check.py): NVIDIA_SMI, FINOPS_LIBCUDA,
# FINOPS_CHECK_PYTHONS (candidates, space-separated), FINOPS_CHECK_{IDLE,LOAD,COOL}_SECONDS.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
STARTED=$(date +%s)
OUT="${OUT:-$REPO/out/gpu-device-check}"
BUNDLE="${FINOPS_BUNDLE:-$REPO/bench/agent-bundle}"
SMI="${NVIDIA_SMI:-nvidia-smi}"
IDLE_S="${FINOPS_CHECK_IDLE_SECONDS:-20}"
LOAD_S="${FINOPS_CHECK_LOAD_SECONDS:-60}"
COOL_S="${FINOPS_CHECK_COOL_SECONDS:-$IDLE_S}"
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: >"$summary"
log() { printf '%s\n' "$*" | tee -a "$summary"; }
die() { log "CANNOT RUN: $*"; exit 2; }
now() { date +%s.%N; }
log "gpu_device_check $(date -u +%FT%TZ) on $(hostname)"

# -- 1. driver, GPUs, MIG ---------------------------------------------------------------------
command -v "$SMI" >/dev/null 2>&1 || die "nvidia-smi not found: it comes with the NVIDIA driver (or set NVIDIA_SMI=/path)"
"$SMI" --query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total,mig.mode.current \
  --format=csv,noheader,nounits >"$OUT/inventory.csv" 2>"$OUT/inventory.err" \
  || die "nvidia-smi --query-gpu failed: $(head -c 300 "$OUT/inventory.err")"
gpu_count=$(grep -c . "$OUT/inventory.csv")
[[ $gpu_count -gt 0 ]] || die "nvidia-smi lists no GPU"
log "gpus: $gpu_count; $(cut -d, -f2,5 "$OUT/inventory.csv" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
load_gpus=()
mig_gpus=()
while IFS=, read -r index _name _uuid _bus _driver _mem mig; do
  if [[ ${mig// /} == Enabled ]]; then mig_gpus+=("${index// /}"); else load_gpus+=("${index// /}"); fi
done <"$OUT/inventory.csv"
log "MIG enabled on: ${mig_gpus[*]:-none} (not loaded: CUDA sees MIG instances, not the GPU)"

# -- 2. bundle, Python, venv ---------------------------------------------------------------------
[[ -f $BUNDLE/requirements.txt && -f $BUNDLE/MANIFEST.json ]] || die "no agent bundle at $BUNDLE: build it on a networked machine with '.venv/bin/python bench/build_agent_bundle.py' and bring bench/agent-bundle/ beside the repository (or FINOPS_BUNDLE=DIR)"
pip_wheel=$(compgen -G "$BUNDLE/pip-*.whl" | head -1)
[[ -n $pip_wheel ]] || die "$BUNDLE has no pip wheel: rebuild it with bench/build_agent_bundle.py"

if [[ $(id -u) -eq 0 ]]; then
  AGENT_USER="${FINOPS_CHECK_USER:-finops-agent}"
  if ! id "$AGENT_USER" >/dev/null 2>&1; then
    [[ -z ${FINOPS_CHECK_USER:-} ]] || die "FINOPS_CHECK_USER=$AGENT_USER: no such user"
    useradd --system --no-create-home --shell /usr/sbin/nologin finops-agent \
      || die "cannot create the unit's user finops-agent (useradd)"
    log "created the system user finops-agent (as the unit's install does)"
  fi
  command -v setpriv >/dev/null || die "setpriv (util-linux) is needed to run the agent as $AGENT_USER"
  # in a subshell: `(as_agent cmd) &` makes $! the command's own pid (setpriv and env exec)
  as_agent() {
    exec setpriv --reuid="$(id -u "$AGENT_USER")" --regid="$(id -g "$AGENT_USER")" \
      --init-groups env HOME="$WORK" USER="$AGENT_USER" "$@"
  }
else
  AGENT_USER=$(id -un)
  as_agent() { exec "$@"; }
  log "not root: the agent runs as $AGENT_USER (unprivileged already); GPM as root is not compared"
fi

WORK=$(mktemp -d /tmp/finops-gpu-check.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  kill $(jobs -p) 2>/dev/null
  wait 2>/dev/null
  [[ -n ${FINOPS_CHECK_KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

pycheck() {  # pycheck PYTHON: prints "VERSION ok|too-old SPEC"; runs on any Python 3
  "$1" - "$BUNDLE/MANIFEST.json" <<'EOF' 2>/dev/null
import json, sys
spec = json.load(open(sys.argv[1]))["project"]["requires_python"]
have = sys.version_info[:2]
def version(text):
    parts = (text.strip().split(".") + ["0"])[:2]
    return tuple(int(p) for p in parts)
ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
       "!=": lambda a, b: a != b, "~=": lambda a, b: a >= b, ">": lambda a, b: a > b,
       "<": lambda a, b: a < b}
ok = True
for clause in filter(None, (c.strip() for c in spec.split(","))):
    op = next(o for o in (">=", "<=", "==", "!=", "~=", ">", "<") if clause.startswith(o))
    ok = ok and ops[op](have, version(clause[len(op):].replace("*", "0")))
print("%d.%d %s %s" % (have[0], have[1], "ok" if ok else "too-old", spec))
EOF
}

candidates=${FINOPS_CHECK_PYTHONS:-"${PYTHON:-} python3.14 python3.13 python3.12 python3.11 python3 /usr/bin/python3 /usr/local/bin/python3"}
PY=""
tried=()
for cand in $candidates; do
  path=$(command -v "$cand" 2>/dev/null) || continue
  verdict=$(pycheck "$path") || { tried+=("$path (not a working Python)"); continue; }
  read -r have state spec <<<"$verdict"
  if [[ $state != ok ]]; then tried+=("$path ($have)"); continue; fi
  if ! (as_agent "$path" -c 'pass') 2>/dev/null; then
    tried+=("$path ($have, but $AGENT_USER cannot run it: a private home?)")
    continue
  fi
  PY=$path
  break
done
if [[ -z $PY ]]; then
  need=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["project"]["requires_python"])' "$BUNDLE/MANIFEST.json" 2>/dev/null || echo "see $BUNDLE/MANIFEST.json")
  die "the agent needs Python $need (its wheel's Requires-Python); found: ${tried[*]:-no python3 at all}. Install one (e.g. apt-get install python3.11) or set PYTHON=/path/to/python3.11"
fi
log "python: $PY ($have), agent user: $AGENT_USER"
"$PY" -m venv --without-pip "$WORK/venv" >"$OUT/venv.log" 2>&1 || die "$PY -m venv failed: $(tail -c 300 "$OUT/venv.log")"
VPY="$WORK/venv/bin/python"
"$VPY" "$pip_wheel/pip" install --quiet --disable-pip-version-check --no-index \
  --find-links "$BUNDLE" --require-hashes -r "$BUNDLE/requirements.txt" >"$OUT/pip.log" 2>&1 \
  || die "installing the agent from $BUNDLE failed (nothing is downloaded here): $(tail -c 600 "$OUT/pip.log")"
AGENT="$WORK/venv/bin/finops-agent"
[[ -x $AGENT ]] || die "the bundle's wheel installed no finops-agent command"
log "installed from the bundle: $(tr '\n' ' ' < <(grep -v '^#' "$BUNDLE/requirements.txt" | cut -d' ' -f1))"

# -- 3. the agent, as the unit's user ---------------------------------------------------------------
mkdir -p "$WORK/agent"
chown "$AGENT_USER" "$WORK/agent" 2>/dev/null || true
port=$("$VPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/agent.json" <<EOF
{"agent": {"sample_interval_seconds": 1.0, "window_seconds": 10.0, "log_format": "json"},
 "spool": {"dir": "$WORK/agent/spool"},
 "export": {"path": "$WORK/agent/windows.jsonl"},
 "prometheus": {"enabled": true, "listen": "127.0.0.1:$port"},
 "metadata": {"provider": "none", "instance_id": "gpu-device-check"}}
EOF
chmod 644 "$WORK/agent.json"
(as_agent timeout 60 "$AGENT" --config "$WORK/agent.json" --once) >"$OUT/once.json" 2>"$OUT/once.log" \
  || die "finops-agent --once as $AGENT_USER failed: $(tail -c 600 "$OUT/once.log")"
gpm_root=null
if [[ $(id -u) -eq 0 ]]; then
  timeout 60 "$AGENT" --config "$WORK/agent.json" --once >"$OUT/once-root.json" 2>/dev/null \
    && gpm_root=$("$VPY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["gpm_gpus"]))' "$OUT/once-root.json")
fi
log "once as $AGENT_USER: $("$VPY" - "$OUT/once.json" <<'EOF'
import json, sys
snap = json.load(open(sys.argv[1]))
print(f"{len(snap['gpus'])} GPU(s), driver {snap['driver_version']}, GPM read on "
      f"{snap['gpm_gpus']}, failed {snap['failed_gpus'] or 'none'}, MIG {snap['mig_gpus']}, "
      f"reading latency {snap['sample_latency_ms']} ms")
EOF
), GPM as root: $gpm_root"

cp "$WORK/agent.json" "$OUT/agent.json"
(as_agent "$AGENT" --config "$WORK/agent.json" --record "$WORK/agent/trace.jsonl") \
  >"$OUT/agent.log" 2>&1 &
agent_pid=$!
"$VPY" - "$port" "$agent_pid" <<'EOF' || die "the agent did not serve /metrics: $(tail -c 600 "$OUT/agent.log")"
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
for _ in range(100):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        direct.open(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
"$SMI" --query-gpu=timestamp,index,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu,clocks.sm \
  --format=csv,noheader,nounits -lms 1000 >"$WORK/smi.csv" 2>"$OUT/smi.err" &
smi_pid=$!
"$VPY" "$REPO/bench/gpu_check_report.py" monitor --pid "$agent_pid" \
  --seconds "$((IDLE_S + LOAD_S + COOL_S + 10))" --out "$WORK/overhead.jsonl" &
monitor_pid=$!

# -- 4. idle, load, cool-down -------------------------------------------------------------------------
t_idle=$(now)
sleep "$IDLE_S"
t_load=$(now)
load_pids=()
for index in "${load_gpus[@]}"; do
  "$VPY" "$REPO/bench/gpu_load.py" --device "$index" --seconds "$LOAD_S" \
    --json "$WORK/load-$index.json" >/dev/null 2>"$OUT/load-$index.err" &
  load_pids+=($!)
done
sleep "$((LOAD_S / 2))"
"$VPY" - "$port" >"$WORK/metrics-under-load.txt" <<'EOF'
import sys, urllib.request
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
print(direct.open(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode())
EOF
load_rc=0
for pid in "${load_pids[@]}"; do wait "$pid" || load_rc=$?; done
t_cool=$(now)
[[ $load_rc -eq 0 ]] || log "load generator failed: $(cat "$OUT"/load-*.err | tail -c 600)"
sleep "$COOL_S"
t_end=$(now)
kill -TERM "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
kill "$smi_pid" "$monitor_pid" 2>/dev/null
wait 2>/dev/null

# -- 5. figures ----------------------------------------------------------------------------------------
metrics_ok=false
grep -q '^DCGM_FI_DEV_GPU_UTIL{' "$WORK/metrics-under-load.txt" \
  && grep -q '^finops_agent_samples_total ' "$WORK/metrics-under-load.txt" && metrics_ok=true
"$VPY" - "$WORK/run.json" <<EOF
import glob, json, os, sys
loads = [json.load(open(p)) for p in sorted(glob.glob("$WORK/load-*.json"))]
json.dump({
    "host": "$(hostname)",
    "python": "$PY ($have)",
    "agent_user": "$AGENT_USER",
    "phases": {"idle": [$t_idle, $t_load], "load": [$t_load, $t_cool], "cooldown": [$t_cool, $t_end]},
    "loaded_gpus": [int(l["device"]) for l in loads],
    "load": loads,
    "mig": {"enabled_on": [${mig_gpus[*]/%/,}]},
    "gpm_gpus_as_root": json.loads('$gpm_root'),
    "metrics_ok": $( [[ $metrics_ok == true ]] && echo True || echo False ),
    "metrics_detail": "DCGM_FI_DEV_GPU_UTIL and finops_agent_samples_total in /metrics under load",
    "elapsed_seconds": $(( $(date +%s) - STARTED )),
}, open(sys.argv[1], "w"), indent=2)
EOF
cp "$WORK/smi.csv" "$WORK/overhead.jsonl" "$WORK/run.json" "$OUT/" 2>/dev/null
cp "$WORK/agent/trace.jsonl" "$OUT/agent-trace.jsonl" 2>/dev/null
cp "$OUT/once.json" "$WORK/once.json"
"$VPY" "$REPO/bench/gpu_check_report.py" report --work "$WORK" --out "$OUT/figures.json" | tee -a "$summary"
rc=${PIPESTATUS[0]}
log "figures: $OUT/figures.json; done in $(( $(date +%s) - STARTED )) s"
exit "$rc"
