"""Study specs: datasets × models × hyper-parameters × seeds, each run with a fixed number.

A study spec is a YAML (or JSON) mapping::

    name: small                      # the study's name (default: the file's stem)
    datasets:                        # names, or {name: ..., options: {...}}
      - xyobject_tiny
    models:                          # names, or {name, options, grid, random}
      - name: ae
      - name: beta_vae
        grid: {model.beta: [1.0, 4.0]}            # every combination of the listed values
        random:                                   # and/or random draws (seeded)
          n: 3
          seed: 0
          space: {lr: {loguniform: [1.0e-4, 1.0e-3]}}
    grid: {}                         # hyper-parameters swept for every model (same syntax)
    random: null
    seeds: 2                         # n (seeds 0..n-1) or an explicit list
    train:                           # run-config fields shared by every run (nested or dotted)
      steps: 200
      batch_size: 32
      model.arch: dlib
    eval: {n_samples: 2000, mode: fast, metrics: [mig, dci, infomec]}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0, max_concurrent: null, max_retries: 2}

Recipes. ``recipe:`` in a model entry, or in ``train`` for every model, starts each run
from a shipped recipe (:mod:`disentkit.recipes`): a recipe name
(``qlae2023/qlae/shapes3d``), a model's recipes (``qlae2023/qlae``, completed with
``/<dataset>``) or a family (``qlae2023``, completed with ``/<model>/<dataset>``), resolved
per run by :func:`disentkit.recipes.resolve_recipe`. A model entry's recipe wins over the
``train`` one. The spec's own keys go on top of the recipe: ``train``, then the dataset and
model names and options, the seed, ``eval`` and the swept hyper-parameters.

Hyper-parameter keys are the dotted keys of ``disentkit train --set`` (``model.beta`` is
the model's ``beta`` option, ``lr`` the run's learning rate, ``data.<option>`` a dataset
option). Random draws take ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``,
``{randint: [lo, hi]}`` (``hi`` exclusive) or ``{choice: [v, ...]}``.

Run numbers. :func:`expand` lists the runs in one fixed order: datasets in file order,
then models in file order, then the model's hyper-parameter settings (the grid's
combinations with keys sorted and values in file order, each combined with every random
draw in draw order), then seeds (innermost). Run ``k`` of that list is model number ``k``
(``run-0000k``): the same spec gives the same numbers on every machine, so
``disentkit study run SPEC --model-num 17`` reproduces one run anywhere and a job array
can split a study by index. Editing a spec renumbers its runs, which is why a study
directory keeps the spec it was started with (``study.yaml``) and refuses another.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from disentkit.recipes import load_recipe, merge_config, resolve_recipe

SPEC_KEYS = ("name", "datasets", "models", "grid", "random", "seeds", "train", "eval",
             "resources")
RESOURCE_DEFAULTS: dict[str, Any] = {
    "cpus_per_trial": 1,  # CPUs Ray reserves for each run (also its torch threads)
    "gpus_per_trial": 0,  # GPUs (fractions allowed) Ray reserves for each run
    "max_concurrent": None,  # at most this many runs at once (None: as resources allow)
    "max_retries": 2,  # a failed or killed run is retried this many times
}
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its number, what it trains and the full run config.

    Attributes:
        model_num: 0-based position in the study's run list.
        dataset: dataset registry name.
        model: model registry name.
        seed: the run's seed.
        hparams: the swept hyper-parameters of this run (dotted key → value).
        config: the run config as a nested dict (:meth:`disentkit.train.RunConfig.from_dict`
            reads it); the swept hyper-parameters are already applied.
    """

    model_num: int
    dataset: str
    model: str
    seed: int
    hparams: dict[str, Any]
    config: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        """The run's directory name, e.g. ``run-00017``."""
        return run_name(self.model_num)


def run_name(model_num: int) -> str:
    """The directory name of run ``model_num``.

    Example:
        >>> run_name(17)
        'run-00017'
    """
    return f"run-{int(model_num):05d}"


@dataclass(frozen=True)
class StudySpec:
    """A checked study spec (see the module docstring for the format)."""

    name: str
    datasets: tuple[dict[str, Any], ...]
    models: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    train: dict[str, Any]
    eval: dict[str, Any]
    resources: dict[str, Any]
    grid: dict[str, list[Any]]
    random: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as written (normalised), what ``study.yaml`` stores."""
        return copy.deepcopy(self.raw)


# ------------------------------------------------------------------------------- loading


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any]) -> StudySpec:
    """Read and check a study spec from a YAML/JSON file or a mapping.

    Raises:
        ValueError: unreadable file, unknown key, a section of the wrong type, an empty
            list of datasets/models/seeds, a bad distribution; the message names the key,
            what was expected and what was received.
        KeyError: unknown model or dataset name (lists the known ones).

    Example:
        >>> spec = load_spec({"name": "s", "datasets": ["xyobject_tiny"],
        ...                   "models": [{"name": "beta_vae", "grid": {"model.beta": [1, 4]}}],
        ...                   "seeds": 2})
        >>> [(r.model_num, r.hparams, r.seed) for r in expand(spec)]
        [(0, {'model.beta': 1}, 0), (1, {'model.beta': 1}, 1), (2, {'model.beta': 4}, 0), (3, {'model.beta': 4}, 1)]
    """  # noqa: E501
    default_name = "study"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        from disentkit.train.config import read_config_file

        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"no study spec at {str(path)!r} (expected a YAML or JSON file)")
        data = read_config_file(path)
        default_name = path.stem
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(
            f"unknown study spec key(s) {unknown}; valid keys: {list(SPEC_KEYS)}"
        )
    name = str(data.get("name") or default_name)
    if not _NAME_RE.match(name):
        raise ValueError(
            f"study 'name' must be letters, digits, '.', '_' or '-'; received {name!r}"
        )
    datasets = tuple(_entry(d, "datasets", allowed=("name", "options"))
                     for d in _nonempty_list(data, "datasets"))
    models = tuple(_entry(m, "models", allowed=("name", "options", "grid", "random", "recipe"))
                   for m in _nonempty_list(data, "models"))
    seeds = _seeds(data.get("seeds", 1))
    train = _mapping(data, "train")
    eval_ = _mapping(data, "eval")
    resources = {**RESOURCE_DEFAULTS, **_mapping(data, "resources")}
    bad = sorted(set(resources) - set(RESOURCE_DEFAULTS))
    if bad:
        raise ValueError(
            f"unknown 'resources' key(s) {bad}; valid keys: {list(RESOURCE_DEFAULTS)}"
        )
    check_resources(resources)
    for key in ("model", "data", "seed", "model.name", "data.name"):
        value = train.get(key)
        if key in train and not (isinstance(value, Mapping) and "name" not in value):
            raise ValueError(
                f"'train' may not set {key!r} (only options of the model and data "
                "sections): the study's datasets, models and seeds say what each run trains"
            )
    grid = _grid(data.get("grid"), "grid")
    random = _random(data.get("random"), "random")
    for m in models:
        m["grid"] = _grid(m.get("grid"), f"models[{m['name']}].grid")
        m["random"] = _random(m.get("random"), f"models[{m['name']}].random")
        both = sorted(set(m["grid"]) & set(grid)) + sorted(
            set((m["random"] or {}).get("space", {})) & set((random or {}).get("space", {})))
        if both:
            raise ValueError(
                f"hyper-parameter(s) {both} of model {m['name']!r} are also swept for every "
                "model; sweep each key in one place"
            )
    raw = {
        "name": name,
        "datasets": [dict(d) for d in datasets],
        "models": [{k: v for k, v in m.items() if v not in (None, {})} for m in models],
        "grid": grid,
        "random": random,
        "seeds": list(seeds),
        "train": train,
        "eval": eval_,
        "resources": resources,
    }
    spec = StudySpec(name=name, datasets=datasets, models=models, seeds=seeds, train=train,
                     eval=eval_, resources=resources, grid=grid, random=random,
                     raw=json.loads(json.dumps(raw)))
    _check_names(spec)
    return spec


def _nonempty_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"study spec key {key!r} must be a non-empty list; received {value!r}")
    return value


def _entry(item: Any, key: str, *, allowed: Sequence[str]) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ValueError(
            f"each entry of {key!r} must be a registry name or a mapping with 'name'; "
            f"received {item!r}"
        )
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in {key!r} entry {item['name']!r}; valid keys: "
            f"{list(allowed)}"
        )
    entry = {k: copy.deepcopy(v) for k, v in item.items()}
    options = entry.get("options")
    if options is None:
        entry["options"] = {}
    elif not isinstance(options, Mapping):
        raise ValueError(
            f"'options' of {key!r} entry {item['name']!r} must be a mapping; received "
            f"{options!r}"
        )
    return entry


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ValueError(f"'seeds' must be a count or a list of integers; received {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"'seeds' as a count must be ≥ 1; received {value}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
    ):
        if len(set(value)) != len(value):
            raise ValueError(f"'seeds' lists a seed twice: {value}")
        return tuple(value)
    raise ValueError(
        f"'seeds' must be a count ≥ 1 or a non-empty list of distinct integers ≥ 0; "
        f"received {value!r}"
    )


def _mapping(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"study spec key {key!r} must be a mapping; received {value!r}")
    return copy.deepcopy(dict(value))


def check_resources(resources: Mapping[str, Any]) -> None:
    """Check a spec's ``resources`` section (``ValueError`` naming the field)."""
    cpus, gpus = resources["cpus_per_trial"], resources["gpus_per_trial"]
    if not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or cpus <= 0:
        raise ValueError(f"'resources.cpus_per_trial' must be a number > 0; received {cpus!r}")
    if not isinstance(gpus, (int, float)) or isinstance(gpus, bool) or gpus < 0:
        raise ValueError(f"'resources.gpus_per_trial' must be a number ≥ 0; received {gpus!r}")
    mc = resources["max_concurrent"]
    if mc is not None and (not isinstance(mc, int) or isinstance(mc, bool) or mc < 1):
        raise ValueError(
            f"'resources.max_concurrent' must be an integer ≥ 1 or null; received {mc!r}"
        )
    mr = resources["max_retries"]
    if not isinstance(mr, int) or isinstance(mr, bool) or mr < 0:
        raise ValueError(f"'resources.max_retries' must be an integer ≥ 0; received {mr!r}")


def _grid(value: Any, where: str) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where!r} must map dotted keys to lists of values; received {value!r}")
    grid: dict[str, list[Any]] = {}
    for key, values in value.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ValueError(f"{where}.{key} lists no values")
        grid[str(key)] = list(values)
    return grid


def _random(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where!r} must be a mapping with 'n', 'seed', 'space'; "
                         f"received {value!r}")
    unknown = sorted(set(value) - {"n", "seed", "space"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where!r}; valid keys: n, seed, space")
    n, seed, space = value.get("n"), value.get("seed", 0), value.get("space")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where}.n must be an integer ≥ 1; received {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{where}.seed must be an integer ≥ 0; received {seed!r}")
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"{where}.space must map dotted keys to distributions; "
                         f"received {space!r}")
    checked: dict[str, dict[str, list[Any]]] = {}
    for key, dist in space.items():
        what = f"{where}.space.{key}"
        if not isinstance(dist, Mapping) or len(dist) != 1:
            raise ValueError(
                f"{what} must be one of {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, "
                f"{{randint: [lo, hi]}}, {{choice: [...]}}; received {dist!r}"
            )
        kind, args = next(iter(dist.items()))
        if kind not in DISTRIBUTIONS:
            raise ValueError(f"{what}: unknown distribution {kind!r}; known: "
                             f"{list(DISTRIBUTIONS)}")
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise ValueError(f"{what}: choice needs a non-empty list; received {args!r}")
        else:
            ok = (isinstance(args, list) and len(args) == 2
                  and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
                  and args[0] < args[1])
            if ok and kind == "loguniform":
                ok = args[0] > 0
            if ok and kind == "randint":
                ok = all(isinstance(a, int) for a in args)
            if not ok:
                raise ValueError(
                    f"{what}: {kind} needs [lo, hi] with lo < hi"
                    + (" and lo > 0" if kind == "loguniform" else "")
                    + (" (integers)" if kind == "randint" else "") + f"; received {args!r}"
                )
        checked[str(key)] = {kind: list(args)}
    return {"n": n, "seed": seed, "space": checked}


def _check_names(spec: StudySpec) -> None:
    from disentkit.data import DATASETS
    from disentkit.models import MODELS

    for d in spec.datasets:
        DATASETS[d["name"]]
    for m in spec.models:
        MODELS[m["name"]]
        for d in spec.datasets:
            _recipe_tree(spec, m, d)  # an unknown recipe fails here, before any run


def _recipe_tree(spec: StudySpec, model: Mapping[str, Any],
                 dataset: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised run config of the recipe a run starts from (``{}`` without one)."""
    name = model.get("recipe") or spec.train.get("recipe")
    if name is None:
        return {}
    if not isinstance(name, str):
        raise ValueError(f"'recipe' must be a recipe name such as 'qlae2023'; received {name!r}")
    from disentkit.train.config import apply_overrides

    cell = resolve_recipe(name, model=model["name"], dataset=dataset["name"])
    tree = apply_overrides(load_recipe(cell))
    if tree.get("model") not in (None, model["name"]):
        raise ValueError(
            f"recipe {cell!r} trains {tree['model']!r}, not model {model['name']!r}: name "
            f"the recipe of {model['name']!r} or a family such as 'qlae2023'"
        )
    return tree


# ------------------------------------------------------------------------------ expansion


def _draws(random: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The random draws of a ``random`` section, in order (the same on every machine)."""
    if not random:
        return [{}]
    rng = np.random.default_rng(random["seed"])
    draws = []
    keys = sorted(random["space"])
    for _ in range(random["n"]):
        draw: dict[str, Any] = {}
        for key in keys:
            kind, args = next(iter(random["space"][key].items()))
            if kind == "uniform":
                value: Any = float(rng.uniform(args[0], args[1]))
            elif kind == "loguniform":
                value = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
            elif kind == "randint":
                value = int(rng.integers(args[0], args[1]))
            else:
                value = copy.deepcopy(args[int(rng.integers(len(args)))])
            draw[key] = value
        draws.append(draw)
    return draws


def _combinations(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    keys = sorted(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


def settings(spec: StudySpec, model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The hyper-parameter settings of one model entry, in run-number order."""
    grid = {**spec.grid, **model.get("grid", {})}
    out = []
    for combo in _combinations(grid):
        for a in _draws(spec.random):
            for b in _draws(model.get("random")):
                out.append({**combo, **a, **b})
    return out


def expand(spec: StudySpec) -> list[RunSpec]:
    """Every run of the study, in model-number order (see the module docstring).

    Raises:
        ValueError: a run whose config is invalid (unknown key, wrong type, unknown model
            option), naming the run.
    """
    from disentkit.train.config import apply_overrides, build_config

    plain = {k: v for k, v in spec.train.items() if "." not in k and k != "recipe"}
    dotted = {k: v for k, v in spec.train.items() if "." in k}
    runs: list[RunSpec] = []
    for dataset in spec.datasets:
        for model in spec.models:
            recipe = _recipe_tree(spec, model, dataset)
            for hp in settings(spec, model):
                for seed in spec.seeds:
                    # the recipe, then the spec's train section, then its dotted keys
                    tree = apply_overrides(
                        merge_config(recipe, apply_overrides(plain)), dotted)
                    tree["data"] = dataset["name"]
                    tree["model_options"] = {**tree.get("model_options", {}),
                                             **copy.deepcopy(model["options"])}
                    tree["model"] = model["name"]
                    tree["data_options"] = {**tree.get("data_options", {}),
                                            **copy.deepcopy(dataset["options"])}
                    tree["seed"] = seed
                    if spec.eval:
                        tree["eval"] = {**tree.get("eval", {}), **copy.deepcopy(spec.eval)}
                    num = len(runs)
                    try:
                        cfg = build_config(tree, hp)
                    except (ValueError, KeyError) as exc:
                        raise ValueError(
                            f"run {num} ({model['name']} on {dataset['name']}, seed {seed}, "
                            f"{hp or 'no hyper-parameters'}): {exc}"
                        ) from None
                    runs.append(RunSpec(model_num=num, dataset=dataset["name"],
                                        model=model["name"], seed=seed, hparams=dict(hp),
                                        config=cfg.to_dict()))
    return runs


# ---------------------------------------------------------------------------- selection


def parse_model_nums(text: str | Iterable[int] | None, n_runs: int) -> list[int]:
    """Parse ``--model-num``: ``17``, ``3-9`` (inclusive), ``0,4,7-8``; ``None``: all.

    Raises:
        ValueError: unparseable text or a number outside ``0 .. n_runs-1``.

    Example:
        >>> parse_model_nums("0,4,7-8", 10)
        [0, 4, 7, 8]
    """
    if text is None:
        return list(range(n_runs))
    if not isinstance(text, str):
        nums = [int(t) for t in text]
    else:
        nums = []
        for part in text.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ValueError(
                    f"--model-num takes a number, a range A-B or a comma list such as "
                    f"'0,4,7-8'; received {text!r}"
                )
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ValueError(f"--model-num range {part!r} runs backwards")
            nums.extend(range(lo, hi + 1))
    bad = [n for n in nums if not 0 <= n < n_runs]
    if bad:
        raise ValueError(
            f"model number(s) {bad} outside this study's runs 0..{n_runs - 1} "
            f"({n_runs} runs)"
        )
    return sorted(set(nums))
