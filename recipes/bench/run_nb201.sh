#!/usr/bin/env bash
# NAS-Bench-201 reproduction with lswag-bench: a seeded sample of cells scored with every proxy, joined with the
# published 200-epoch test accuracies (CIFAR-10, CIFAR-100, ImageNet16-120), then correlations + LIBRA.
# Resumable: if it is killed, run the same command again and it continues where it stopped.
#
#   recipes/bench/run_nb201.sh                      # 1000 cells, seed 0, on cuda if available
#   N=100 DEVICE=cpu THREADS=1 recipes/bench/run_nb201.sh
#   VAL=1 recipes/bench/run_nb201.sh                # also the paper's protocol: the 723 cells with validation acc.
#   recipes/bench/run_nb201.sh --proxies lswag zico params   # extra arguments go to lswag-bench
#
# Data: --data-dir is taken from $LSWAG_DATA_DIR (else ../shared/data beside the checkout).
set -euo pipefail
N="${N:-1000}"
SEED="${SEED:-0}"
PY="${PY:-python}"
OUT="${OUT:-runs/bench}"
EXTRA=()
[[ -n "${DEVICE:-}" ]] && EXTRA+=(--device "$DEVICE")
[[ -n "${THREADS:-}" ]] && EXTRA+=(--threads "$THREADS")
[[ -n "${LSWAG_DATA_DIR:-}" ]] && EXTRA+=(--data-dir "$LSWAG_DATA_DIR")

"$PY" -m lswag_lightning.cli.bench nb201 --sample "$N" --seed "$SEED" --out "$OUT/nb201_${N}_seed${SEED}" \
    "${EXTRA[@]}" "$@"
if [[ "${VAL:-0}" == "1" ]]; then
    "$PY" -m lswag_lightning.cli.bench nb201 --nb201-set naslib_val --out "$OUT/nb201_naslib_val" "${EXTRA[@]}" "$@"
fi
