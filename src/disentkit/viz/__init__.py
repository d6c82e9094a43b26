"""Pictures of runs: latent traversals, reconstructions, samples, heatmaps, score plots.

Plain functions that return arrays or figures (:mod:`disentkit.viz.arrays`: uint8 images,
no matplotlib; :mod:`disentkit.viz.figures`: matplotlib figures drawn on an Agg canvas),
and :func:`render_run_figures`, which draws every figure that applies to a run directory
into ``RUN/figures/``. :func:`write_report` (:mod:`disentkit.viz.report`) turns a run into
one self-contained HTML page.

Importing this package imports neither torch nor matplotlib; calling the functions does.
"""

from __future__ import annotations

from typing import Any

from disentkit.viz.arrays import (
    TraversalPlan,
    prior_samples,
    reconstruction_grid,
    save_gif,
    tile,
    traversal_frames,
    traversal_grid,
    traversal_plan,
)
from disentkit.viz.figures import (
    DPI,
    active_passive,
    codebook_usage,
    factor_bars,
    importance_heatmap,
    matching_order,
    mi_heatmap,
    render_run_figures,
    save_figure,
    score_bars,
    score_table,
    training_curves,
    training_scores,
)

__all__ = [
    "DPI",
    "TraversalPlan",
    "active_passive",
    "codebook_usage",
    "factor_bars",
    "importance_heatmap",
    "matching_order",
    "mi_heatmap",
    "prior_samples",
    "reconstruction_grid",
    "render_run_figures",
    "save_figure",
    "save_gif",
    "score_bars",
    "score_table",
    "tile",
    "training_curves",
    "training_scores",
    "traversal_frames",
    "traversal_grid",
    "traversal_plan",
    "write_report",
]


def __getattr__(name: str) -> Any:
    # the report module is imported on first use only
    if name == "write_report":
        from disentkit.viz.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
