#!/usr/bin/env bash
# Sharded lswag-bench: the N shards as one Hydra multirun (sharded.yaml: joblib, one process per shard on this
# machine; CONFIG=sharded_slurm: one SLURM array task per shard), then one merge into table.csv + report.md.
# A shard that fails is named by the merge (exit 1, no table written); run this script again: finished shards are
# skipped, a killed one resumes where it stopped.
#
#   N=2 SAMPLE=40 recipes/bench/run_sharded.sh 'args=[--proxies,lswag,zico,params]'
#   N=16 SAMPLE=1000 CONFIG=sharded_slurm recipes/bench/run_sharded.sh hydra.launcher.partition=gpu
#   N=4 recipes/bench/run_sharded.sh 'gpus=[0,1,2,3]' device=cuda     # 4 shards on the 4 GPUs of this machine
#
# Extra arguments are Hydra overrides of sharded.yaml, passed to both steps.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-python}"
COMMON=(--config-name "${CONFIG:-sharded}" shards="${N:-2}" sample="${SAMPLE:-1000}" seed="${SEED:-0}")
[[ -n "${OUT:-}" ]] && COMMON+=(out="$OUT")

"$PY" "$HERE/sharded.py" -m "${COMMON[@]}" "$@" || echo "run_sharded.sh: some shard jobs failed; merging" >&2
"$PY" "$HERE/sharded.py" "${COMMON[@]}" "$@" merge=true
