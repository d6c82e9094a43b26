"""Private names of other libraries: every use is guarded and its fallback gives the same
numbers.

- ``scipy.sparse._sparsetools`` (``metrics/_boost.py``: the boosted trees' histograms and
  leaf sums; ``metrics/_mi.py``: the contingency tables): hidden in a fresh interpreter,
  ``import disentkit`` still works and DCI and MIG give the same numbers through the public
  product, ``np.bincount`` and the public COO conversion.
- scikit-learn's ``HistGradientBoostingClassifier._predictors`` (``metrics/dci.py``, backend
  ``"hist"``): when missing, a one-line error that names the backend to use instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from disentkit.metrics import _boost, _mi
from disentkit.metrics.dci import dci
from disentkit.metrics.mig import mig

SRC = Path(__file__).resolve().parents[2] / "src"

# Runs in a fresh interpreter: scipy.sparse is loaded (it needs its own kernels), then its
# private module is made unimportable, as in a scipy release that moved it.
_HIDDEN = """
import json, sys
import numpy as np
import scipy.sparse
sys.modules["scipy.sparse._sparsetools"] = None
if "_sparsetools" in vars(scipy.sparse):
    delattr(scipy.sparse, "_sparsetools")
import disentkit
from disentkit.metrics import _boost, _mi
from disentkit.metrics.dci import dci
from disentkit.metrics.mig import mig
z, s = (np.asarray(a) for a in json.loads(sys.stdin.read()))
r = dci(z, s, backend="binned", seed=0)
print(json.dumps({
    "boost_private": _boost._sparsetools is not None,
    "matvecs": _boost._MATVECS_OK,
    "mi_private": _mi._coo_todense is not None,
    "dci": [r.disentanglement, r.completeness, r.informativeness_test],
    "importance": r.importance.tolist(),
    "mig": mig(z, s).score,
    "evaluate": disentkit.evaluate(z, s, metrics=["mig", "modularity"]).to_dict()["mig"],
}))
"""


def _case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    s = rng.integers(0, [3, 4, 5], size=(400, 3))
    z = rng.standard_normal((400, 4))
    z[:, :3] += s * np.array([1.0, 0.6, 0.4])
    z[:, 3] += 0.3 * s[:, 0]
    return z, s


def test_disentkit_works_without_scipys_private_sparse_kernels() -> None:
    z, s = _case()
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", _HIDDEN],
        input=json.dumps([z.tolist(), s.astype(int).tolist()]),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    hidden = json.loads(out.stdout)
    # the fallbacks were taken there ...
    assert hidden["boost_private"] is False and hidden["matvecs"] is False
    assert hidden["mi_private"] is False
    # ... while this interpreter uses the private kernels
    assert _boost._sparsetools is not None and _boost._MATVECS_OK
    assert _mi._fast_scatter_works()
    r = dci(z, s, backend="binned", seed=0)
    assert hidden["dci"] == [r.disentanglement, r.completeness, r.informativeness_test]
    np.testing.assert_array_equal(hidden["importance"], r.importance)
    assert hidden["mig"] == mig(z, s).score
    assert hidden["evaluate"] == hidden["mig"]


class _NoPrivateTrees(HistGradientBoostingClassifier):
    """A scikit-learn whose fitted booster keeps its trees elsewhere."""

    def fit(self, *args, **kwargs):
        super().fit(*args, **kwargs)
        del self._predictors
        return self


def test_dci_hist_without_sklearns_private_trees_says_what_to_use(monkeypatch) -> None:
    # dci imports the classifier when it fits, from scikit-learn
    monkeypatch.setattr("sklearn.ensemble.HistGradientBoostingClassifier", _NoPrivateTrees)
    z, s = _case()
    with pytest.raises(RuntimeError, match=r"private attributes.*use backend='gbt'"):
        dci(z[:200], s[:200], backend="hist", n_jobs=1)
    # the reference backend and the fast one do not read them
    assert dci(z[:200], s[:200], backend="binned").metric_id == "dci/binned@1"
