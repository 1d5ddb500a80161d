#!/usr/bin/env bash
# One prepared call for the first GPU session: the CUDA parity tests, then the real-loop benchmark
# (four columns, Adam / AdamW / SGD-momentum, both layouts) and the pinned-gradient benchmark, all
# written to one folder (default: $OUT, else benchmarks/results/gpu).
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]          # ~6-9 minutes on one GPU, most of it compiling
#
# Environment: PYTHON (default python3), BIG (the "big" layout, default 96x1812500 = 174M parameters,
# ~4 GB per implementation), ROUNDS (default 15). Exit status: non-zero if a step failed; every
# step's output is kept in the folder either way.
set -u
cd "$(dirname "$0")/.."
out="${1:-${OUT:-benchmarks/results/gpu}}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

"$py" - > "$out/gpu_env.json" <<'PY' || { echo "no usable torch/CUDA: see $out/gpu_env.json"; exit 2; }
import json, platform, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "host": platform.node()}
print(json.dumps(info, indent=2))
sys.exit(0 if info["cuda_available"] else 1)
PY
cat "$out/gpu_env.json"

echo "== CUDA parity tests"
timeout 300 "$py" -m pytest tests/test_fused_cuda.py -q -x -p no:cacheprovider --junitxml="$out/cuda_tests.xml" \
    > "$out/cuda_tests.txt" 2>&1 || status=1
tail -5 "$out/cuda_tests.txt"

echo "== real loop (zero_grad(), backward, step)"
# one build per implementation: several would multiply the GPU memory (and Triton compiles) by their number
timeout 420 "$py" benchmarks/real_loop.py --device cuda --big "${BIG:-96x1812500}" --rounds "${ROUNDS:-15}" --replicas 1 \
    --out "$out/real_loop-cuda.json" > "$out/real_loop-cuda.txt" 2>&1 || status=1
tail -12 "$out/real_loop-cuda.txt"

echo "== pinned gradients (the older benchmark: grads left in place between steps)"
timeout 240 "$py" benchmarks/step_throughput.py --device cuda --big "${BIG:-96x1812500}" --algorithms adam,adamw,sgd-momentum \
    --budget 1 --out "$out/step_throughput-pinned-cuda.json" > "$out/step_throughput-pinned-cuda.txt" 2>&1 || status=1
tail -8 "$out/step_throughput-pinned-cuda.txt"
exit $status
