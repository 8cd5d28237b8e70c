#!/usr/bin/env bash
# GPU check of the D-DBPN job: at most about 10 minutes on one H100 (the parts' timeouts add
# up to 585 s), no network needed; typically 3-5 minutes. The timeouts leave room for a cold
# machine, whose cudnn autotuning made an fp32 first step take 27 s (18 s on a warm one).
#
#   bash scripts/gpu_check_ddbpn.sh            (from the repository root)
#
# 1. the step bench at paper size (4x, n0 256, nR 64, T 7, batch 20, LR patch 32): set-up
#    costs, then per precision (fp32, fp16 + GradScaler, bf16) the first step, steps/s on
#    synthetic tensors and fed by the job's own DataLoader, their ratio, peak memory;
# 2. the same in bf16 with cudnn.benchmark off (the first step without autotuning), with
#    channels_last, and with torch.compile (default mode, then reduce-overhead = CUDA graphs);
# 3. a 1-epoch, 20-iteration pretrain and two 1-epoch fine-tunes through the engine (local
#    executor, its own pretrain job first), with the time split each trial reports.
# Every part is guarded (its own timeout; a failure is printed and the next part runs). A
# compile part that times out says torch.compile costs more than a short trial can win back.
set -x
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
OUT="${TMPDIR:-/tmp}/gpu_check_ddbpn.$$"
mkdir -p "$OUT"
began=$(date +%s)
SIZE="${DDBPN_CHECK_SIZE:-paper}"   # tiny: a CPU smoke test of this script (not a measurement)
if [ "$SIZE" = tiny ]; then
  NET="scale: 4, n0: 16, nR: 8, T: 2, patch: 8, batch: 4, disc_width: 8, disc_fc: 16, vgg_taps: relu1_2, threads: 1"
  STEPS=2
else
  STEPS=20
  NET="scale: 4, n0: 256, nR: 64, T: 7, patch: 32, batch: 20"
fi
part() { echo; echo "=== $1 ($(( $(date +%s) - began )) s so far)"; }

part "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "PART FAILED: nvidia-smi"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())" \
  || echo "PART FAILED: torch"
nproc

part "bench: paper size, three precisions, job DataLoader (4 workers)"
timeout 150 python scripts/bench_ddbpn_step.py --size $SIZE --precisions fp32,fp16,bf16 \
  --steps $STEPS --warmup 2 --workers 4 || echo "PART FAILED: bench precisions (status $?)"

part "bench: bf16, cudnn.benchmark off (first step without autotuning)"
timeout 45 python scripts/bench_ddbpn_step.py --size $SIZE --precisions bf16 --steps $STEPS \
  --no-setup --no-loader --cudnn-benchmark off || echo "PART FAILED: bench benchmark-off (status $?)"

part "bench: bf16 + channels_last"
timeout 60 python scripts/bench_ddbpn_step.py --size $SIZE --precisions bf16 --steps $STEPS \
  --no-setup --no-loader --channels-last || echo "PART FAILED: bench channels_last (status $?)"

part "engine: pretrain job + 2 one-epoch fine-tunes, local executor"
python - "$OUT/study.yaml" "$NET" <<'PY' || echo "PART FAILED: study file"
import sys, yaml
path, net = sys.argv[1], yaml.safe_load("{" + sys.argv[2] + "}")
run = {**net, "iters_per_epoch": 20, "val_crop": 256}
study = {
    "name": "gpu-check-ddbpn",
    "objective": {"entry": "autotune.jobs.ddbpn.train:finetune", "metric": "niqe",
                  "mode": "min", "timeout_s": 240},
    "space": {"lr": {"values": [1.0e-4, 1.0e-3]}, "w1": 0.1, "w2": 1, "w3": 1.0e-3, "w4": 1,
              "epochs": 1, **run},
    "stages": {"pretrain": {"entry": "autotune.jobs.ddbpn.train:pretrain", "epochs": 1,
                            "params": {"w1": 0.01, **run}}},
    "search": {"algorithm": "grid", "max_trials": 2},
    "executor": {"kind": "local", "max_concurrent": 1},
}
yaml.safe_dump(study, open(path, "w"), sort_keys=False)
PY
cat "$OUT/study.yaml"
timeout 90 python -m autotune run "$OUT/study.yaml" --dir "$OUT/run" \
  || echo "PART FAILED: engine run (status $?)"
python -m autotune status "$OUT/run" || echo "PART FAILED: status"
python - "$OUT/run" <<'PY' || echo "PART FAILED: trial timings"
import json, sys
from autotune.history import History
from autotune.journal import Journal
h = History.load(Journal(sys.argv[1] + "/history.jsonl"))
keys = ["process_age_s", "seconds", "setup_s", "first_step_s", "data_wait_s", "steps_per_s", "eval_s", "niqe"]
for name, st in h.stages.items():
    print(name, st.status, f"cost {st.cost_s:.1f} s", {k: round(st.metrics.get(k, -1), 3) for k in keys + ["build_s"]})
for t, r in sorted(h.trials.items()):
    print("trial", t, r.status, f"cost {r.cost_s:.1f} s", {k: round(r.metrics.get(k, -1), 3) for k in keys}, r.error or "")
PY
tail -n 5 "$OUT"/run/trials/*/stderr.log "$OUT"/run/stages/pretrain/stderr.log 2>/dev/null

part "bench: torch.compile (default, then reduce-overhead = CUDA graphs), bf16"
timeout 120 python scripts/bench_ddbpn_step.py --size $SIZE --precisions bf16 --steps $STEPS \
  --no-setup --no-loader --compile default || echo "PART FAILED: compile default (status $?)"
timeout 120 python scripts/bench_ddbpn_step.py --size $SIZE --precisions bf16 --steps $STEPS \
  --no-setup --no-loader --compile reduce-overhead || echo "PART FAILED: compile reduce-overhead (status $?)"

part "done"
rm -rf "$OUT"
