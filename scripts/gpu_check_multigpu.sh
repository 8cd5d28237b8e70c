#!/usr/bin/env bash
# The D-DBPN job's one-GPU path through the local executor, and trials_per_gpu packing.
#
#   bash scripts/gpu_check_multigpu.sh          # from the repository root; about 2-3 minutes
#
# Needs torch with CUDA and one visible GPU; no network (built-in images, a seeded random
# VGG19). Runs `python -m autotune run` twice on the full-size D-DBPN fine-tune (n0=256,
# nR=64, T=7, batch 20, 32x32 LR patches, the four losses):
#   1. one trial alone: the executor gives it the GPU (CUDA_VISIBLE_DEVICES), it trains on CUDA;
#   2. four trials packed on that GPU (trials_per_gpu: 4, max_concurrent 8: capped to 4, one
#      line); the figure is their summed training throughput over the single trial's.
# EPOCHS (default 6) x 40 iterations per trial; raise it if the training phase is short
# next to the start-up (the script prints both).
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
EPOCHS="${EPOCHS:-6}"
WORK="$(mktemp -d /tmp/gpu_check_multigpu.XXXXXX)"
echo "work directory: $WORK"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || true
python - <<'EOF'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA device"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF

# the objective: the D-DBPN fine-tune, plus where it ran and when (numeric metrics)
cat > "$WORK/gpucheck_objective.py" <<'EOF'
import os
import time

import torch

from autotune.jobs.ddbpn.train import finetune as ddbpn_finetune


def finetune(params, ctx):
    began = time.time()
    result = ddbpn_finetune(params, ctx)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    result.update(cuda=float(torch.cuda.is_available()),
                  visible_gpu=float(visible) if visible.isdigit() else -1.0,
                  max_mem_gb=torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0,
                  began=began, ended=time.time())
    return result
EOF

write_study() {  # name, lr values, executor lines
  cat > "$WORK/$1.yaml" <<EOF
name: $1
objective: {entry: "gpucheck_objective:finetune", metric: niqe, mode: min}
space:
  lr: {values: [$2]}
  w1: 0.01
  w2: 0.1
  w3: 0.001
  w4: 1.0
  epochs: $EPOCHS
  iters_per_epoch: 40
  batch: 20
  patch: 32
  val_crop: 256
  save_sr: false
search: {algorithm: grid}
executor: {kind: local, $3}
EOF
}

write_study one "1.0e-4" "max_concurrent: 1"
write_study packed "1.0e-4, 2.0e-4, 5.0e-5, 1.0e-5" "max_concurrent: 8, trials_per_gpu: 4"

for name in one packed; do
  echo "== $name"
  start=$(date +%s)
  timeout 240 python -m autotune run "$WORK/$name.yaml" --dir "$WORK/$name" --quiet
  echo "$name: $(( $(date +%s) - start )) s wall"
done

python - "$WORK" <<'EOF'
import os
import sys

from autotune.history import History
from autotune.journal import Journal

work = sys.argv[1]
SAMPLES = 40 * 20  # per epoch: iterations x batch


def trials(name):
    h = History.load(Journal(os.path.join(work, name, "history.jsonl")))
    out = []
    for rec in h.trials.values():
        assert rec.status == "ok", f"{name} trial {rec.trial}: {rec.error}"
        out.append(rec.metrics)
    return out


one = trials("one")[0]
assert one["cuda"] == 1.0 and one["visible_gpu"] >= 0, one
rate1 = one["epochs"] * SAMPLES / one["seconds"]
print(f"1-GPU path: trained on CUDA (CUDA_VISIBLE_DEVICES={int(one['visible_gpu'])}), "
      f"{one['epochs']:.0f} epochs in {one['seconds']:.1f} s training "
      f"({one['ended'] - one['began']:.1f} s in the objective), {rate1:.1f} samples/s, "
      f"{rate1 / 20:.2f} it/s, peak memory {one['max_mem_gb']:.2f} GB, "
      f"niqe {one['niqe']:.2f} psnr {one['psnr']:.2f}")

packed = trials("packed")
assert len(packed) == 4 and all(m["cuda"] == 1.0 for m in packed)
gpus = sorted({int(m["visible_gpu"]) for m in packed})
began = min(m["began"] for m in packed)
ended = max(m["ended"] for m in packed)
overlap = min(m["ended"] for m in packed) - max(m["began"] for m in packed)
rates = [m["epochs"] * SAMPLES / m["seconds"] for m in packed]
slowest = max(m["seconds"] for m in packed)
total = sum(m["epochs"] * SAMPLES for m in packed) / slowest
print(f"4 trials packed on GPU(s) {gpus}: per-trial {min(rates):.1f}-{max(rates):.1f} samples/s, "
      f"training {min(m['seconds'] for m in packed):.1f}-{slowest:.1f} s, objectives overlapped "
      f"{overlap:.1f} s of {ended - began:.1f} s, peak memory "
      f"{max(m['max_mem_gb'] for m in packed):.2f} GB per trial")
print(f"packing throughput (4 packed, summed samples over the slowest training time) / one "
      f"alone: {total / rate1:.2f}x")
single_wall = one["ended"] - one["began"]
print(f"whole objectives (start-up, training, evaluation): 4 packed took {ended - began:.1f} s, "
      f"4 one after another would take {4 * single_wall:.1f} s: "
      f"{4 * single_wall / (ended - began):.2f}x")
EOF
