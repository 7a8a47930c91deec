#!/usr/bin/env bash
# Runs every benchmark with its default sizes and rewrites bench/RESULTS.md from their output.
#
#   bench/run_all.sh                 # from the repository root; about 35-45 min on 2 idle cores
#   WITH_1M=1 bench/run_all.sh       # also search_scale at 1M points (edge stores; ~2-3 GB RAM, +10-15 min)
#   FORCE=1 bench/run_all.sh         # run even when the CPU is busy (the file is then marked noisy)
#   PYTHON=path/to/python            # default: .venv/bin/python
#
# Without the real FaceNet weights the scripts write stand-in weights into a temporary TORCH_HOME:
# timings do not depend on the weights' values.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
load=$(cut -d' ' -f1 /proc/loadavg)
noisy=""
if awk "BEGIN{exit !($load >= 0.5)}"; then
  if [[ "${FORCE:-0}" != "1" ]]; then
    echo "1-minute load average is $load (>= 0.5): timings would be noisy. Re-run when idle, or FORCE=1." >&2
    exit 3
  fi
  noisy="**Noisy: the 1-minute load average was $load when this run started (CPU shared) — to be re-run on an idle machine.**"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sizes="20000,100000"
[[ "${WITH_1M:-0}" == "1" ]] && sizes="20000,100000,1000000"
set -x
"$PY" bench/targets.py >"$out/targets.md"
"$PY" bench/startup.py >"$out/startup.md"
"$PY" bench/query_latency.py --http >"$out/query.md"
"$PY" bench/indexing_throughput.py >"$out/indexing.md"
"$PY" bench/weekly_reuse.py >"$out/reuse.md"
"$PY" bench/private_mode.py --vector-concurrency 8,2 >"$out/private.md"
"$PY" bench/search_scale.py --sizes "$sizes" >"$out/scale.md"
"$PY" bench/soak.py >"$out/soak.md"
"$PY" bench/soak.py --queue-variants >"$out/queue.md"
set +x
{
  echo "# Benchmark results"
  echo
  echo "Produced by \`bench/run_all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Each section names the command"
  echo "that produced it and the machine it ran on. Only ratios taken in one run mean anything: the"
  echo "targets section measures each of ours beside its reference in the same process."
  echo
  [[ -n "$noisy" ]] && { echo "$noisy"; echo; }
  cat "$out/targets.md"; echo
  cat "$out/startup.md"; echo
  cat "$out/query.md"; echo
  cat "$out/indexing.md"; echo
  cat "$out/reuse.md"; echo
  cat "$out/private.md"; echo
  cat "$out/scale.md"; echo
  cat "$out/soak.md"; echo
  cat "$out/queue.md"; echo
  cat bench/advice.md
} > bench/RESULTS.md
echo "wrote bench/RESULTS.md" >&2
