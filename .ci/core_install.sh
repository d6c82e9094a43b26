#!/usr/bin/env bash
# The core install works on its own: build the wheel, install it WITHOUT extras in a fresh
# virtualenv (dependencies from PyPI, pinned by requirements-lock.txt as constraints), then
# score a small array, list the metrics, and check that `disentkit train` names the extra.
# Usage: .ci/core_install.sh   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
start=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# built from a copy, so that setuptools' build/ and *.egg-info stay out of the checkout
mkdir "$work/tree"
cp -r pyproject.toml README.md src "$work/tree/"
rm -rf "$work"/tree/src/*.egg-info
"$PYTHON" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/tree"
wheel=("$work"/dist/disentkit-*.whl)
"$PYTHON" -m venv "$work/venv"
bin="$work/venv/bin"
"$bin/python" -m pip install --quiet --upgrade pip
"$bin/python" -m pip install --quiet -c requirements-lock.txt "${wheel[0]}"

for pkg in torch lightning matplotlib pandas pyarrow ray; do
  if "$bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$pkg') is None)"; then
    echo "core install: $pkg was installed without being asked for" >&2
    exit 1
  fi
done

cd "$work"
"$bin/python" - <<'PY'
import numpy as np
rng = np.random.default_rng(0)
y = rng.integers(0, 5, size=(2000, 3))
np.save("y.npy", y)
np.save("z.npy", np.concatenate([y + 0.3 * rng.normal(size=y.shape),
                                 rng.normal(size=(2000, 2))], axis=1))
PY
"$bin/disentkit" --help >/dev/null
"$bin/disentkit" score z.npy y.npy --json scores.json >/dev/null
"$bin/python" -c "import json; d = json.load(open('scores.json')); assert d['metrics'], d"
"$bin/disentkit" metrics >/dev/null
set +e
"$bin/disentkit" train --model ae --data xyobject_tiny 2>train.err
rc=$?
set -e
if [ "$rc" != 2 ] || ! grep -q "pip install 'disentkit\[train\]'" train.err; then
  echo "core install: disentkit train should exit 2 naming the 'train' extra; got $rc:" >&2
  cat train.err >&2
  exit 1
fi
echo "core install OK: wheel without extras scores, lists metrics and names the 'train' extra" \
     "($(( $(date +%s) - start )) s)"
