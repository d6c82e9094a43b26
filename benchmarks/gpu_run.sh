#!/usr/bin/env bash
# The training benchmark on a lent GPU, as one short prepared call.
#
#   benchmarks/gpu_run.sh prepare   # here, with network: the wheels the GPU image lacks, into .whl/
#   benchmarks/gpu_run.sh           # there: single-run steps/s (trainer vs bare loop), vectorised
#                                   # K = 8/32/64 model-steps/s and peak GPU memory, into $OUT
#
# The GPU image has PyTorch, Lightning, typer, rich, scikit-learn, safetensors and h5py, but
# not pydantic; `prepare` downloads pydantic and its needs as cp312 wheels into .whl/
# (git-ignored; carry `.whl` to the machine). The run installs them into /tmp/site, puts
# src/ first on the path (no install: the image's torch stays) and writes everything it
# prints to $OUT/gpu_benchmark.md, with nvidia-smi's view of the card first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = prepare ]; then
  mkdir -p .whl
  for spec in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
              typing-inspection==0.4.5 typing-extensions==4.16.0; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux_2_28_x86_64 -d .whl "$spec"
  done
  ls .whl
  exit 0
fi

# DEVICE=cpu QUICK=1 PYTHON=.venv/bin/python benchmarks/gpu_run.sh rehearses the call here.
OUT="${OUT:-/tmp/disentkit-gpu}"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
if ! "$PYTHON" -c "import pydantic" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
if [ -n "${QUICK:-}" ]; then  # a rehearsal: small sizes, K = 2
  trainer=(--steps 4 --log-every 2 --repeats 1 --size 32 --models beta_vae --archs dlib)
  vectorized=(--k 2 --steps 4 --log-every 2 --repeats 1 --size 32 --models beta_vae)
else
  trainer=(--steps 200 --log-every 50 --repeats 2)
  vectorized=(--k 8 32 64 --steps 100 --log-every 25 --repeats 2)
fi
report="$OUT/gpu_benchmark.md"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PYTHON" benchmarks/train.py --part trainer --device "$DEVICE" "${trainer[@]}"
  "$PYTHON" benchmarks/train.py --part vectorized --device "$DEVICE" "${vectorized[@]}"
} 2>&1 | grep -v -E '^(step [0-9]+/|run directory|training )' | tee "$report"
