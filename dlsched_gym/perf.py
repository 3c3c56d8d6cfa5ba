"""How fast a job progresses on a given allocation (the rate model).

Progress is measured in the job's work units: seconds of run time at its requested allocation of
the reference GPU type (the trace duration). A model answers
``rate(job, gpus, sharers) -> work units per second``; the engine asks again whenever a job's
allocation or its GPUs' sharing changes, and, for models with coupled rates (see
:class:`PerfModel`), whenever the model reports that another job's start or end changed it.

Models (``PERF_MODELS``, built with :func:`make_perf`):

- ``duration`` (the default) reproduces the trace exactly: a job on its requested GPU count runs
  at rate 1, so its run time equals its trace duration. On another GPU count (elastic jobs) it
  scales linearly, ``len(gpus) / num_gpus``; co-location is not slowed down.
- ``throughput`` multiplies switchable factors into that rate, each from a public measurement
  (tables derived by :func:`derive_tables` into ``traces/data/perf/perf_tables.json``; the work
  unit stays "seconds on the requested allocation of the reference GPU type"):

  - ``gpu_type``: throughput(model, T) / throughput(model, V100) for the gang's slowest type T
    (peak single-GPU samples/s; Gavel's K80/P100/V100 tables, ElasticFlow's A100 tables,
    Pollux's T4 profiles as ElasticFlow ships them). A type a model was not measured on, and
    an unknown model, use the median ratio over the models measured on both types.
  - ``scaling``: S(n) / S(num_gpus), S the model's measured speed-up curve over GPU counts
    (same tables); unknown models use the power law ``n ** alpha`` fitted to all curves.
  - ``locality``: ``"pal"`` divides by PAL's lambda = 1.7 when the gang spans nodes (and by
    ``rack_penalty`` when it spans racks); ``"gavel"`` uses Gavel's measured
    unconsolidated/consolidated throughput ratio; ``"bandwidth"`` adds ring all-reduce time over
    the slowest spanned node link to every iteration (NetPack-style; see
    :meth:`ThroughputModel.rate_with_bandwidth` for per-node bandwidth shares).
  - ``variability``: divides by the slowdown of the gang's slowest GPU for the job's PAL
    application class, drawn per GPU at reset from PAL's measured V100 data (seeded).
  - ``sharing``: co-located jobs slow down by Gavel's measured pair throughputs.

  With every factor off, ``throughput`` is the ``duration`` model.
- ``network``: network contention (:class:`dlsched_gym.network.NetworkModel`): a base
  throughput model (every factor off by default) in which a job spanning servers adds its
  gradient exchange at its steady-state bandwidth share (NetPack's progressive filling over the
  server links and the switch's in-network-aggregation capacity) to every iteration. Its rates
  are coupled: when a job starts or ends, the engine re-rates the jobs whose links it shares.
- ``goodput``: Pollux's goodput (throughput x statistical efficiency at the best batch size for
  the allocation, or the trace batch with ``adaptive=False``), relative to the job's requested
  configuration; see :mod:`dlsched_gym.goodput`.

  ``execution`` says how a job's gang runs. ``"ddp"`` (the default): one worker per GPU in
  lock-step, so a gang mixing GPU types runs at its slowest type (the ``gpu_type`` factor above).
  ``"easyscale"``: the job keeps ``max_gpus`` logical workers (EasyScale's EasyScaleThreads,
  Li et al., SC'23) whatever it runs on; they are spread over its GPUs by speed
  (:func:`est_balance`), and an iteration lasts as long as the most loaded GPU needs.

Every table lookup is done once per distinct (model, batch size) at :meth:`ThroughputModel.reset`;
the per-call work is a few list lookups over the job's GPUs.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import gzip
import heapq
import inspect
import json
import math
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dlsched_gym.errors import ConfigError
from dlsched_gym.goodput import GoodputModel
from dlsched_gym.network import NetworkModel

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec
    from dlsched_gym.engine import JobTable


class PerfModel(Protocol):
    """A rate model.

    Optional methods the engine looks up once at ``Engine.reset`` (a model without them costs
    nothing extra):

    - ``rate_shared(job, gpus, partners) -> float``: the rate when the job shares GPUs with the
      jobs ``partners`` (asked instead of ``rate`` whenever a GPU is shared).
    - Coupled rates, for models in which one job's rate depends on where *other* jobs run (network
      contention, :class:`dlsched_gym.network.NetworkModel`):

      - ``placed(job, gpus) -> Iterable[int]``: ``job`` now holds ``gpus`` (a start, a share or
        a resize), called before the engine asks the job's own rate;
      - ``removed(job) -> Iterable[int]``: ``job`` released its GPUs (finish, preemption,
        forced reclaim, and the first half of a resize; jobs in the cloud pool hold no GPUs and
        are never reported).

      Both return the OTHER running jobs whose rate changed; the engine asks their rate again
      (in sorted order, so runs are deterministic) at the current time. Such a model keeps state
      about the running jobs: ``Engine.clone`` copies it with :func:`copy.copy`, so define
      ``__copy__`` to copy that state.
    """

    name: str

    def reset(self, spec: ClusterSpec, jobs: JobTable, rng: np.random.Generator) -> None:
        """Bind to a cluster and workload before a simulation."""

    def rate(self, job: int, gpus: np.ndarray, sharers: int) -> float:
        """Work units per second of ``job`` on ``gpus``; ``sharers`` is the largest number of
        jobs on any of those GPUs (1 = exclusive)."""


# ---------------------------------------------------------------------------------------------
# Constants with their sources
# ---------------------------------------------------------------------------------------------

#: GPU type whose throughput defines the work unit (the DESIGN's "reference GPU type"; the
#: cluster module's default type).
REFERENCE_GPU_TYPE = "V100"

#: PAL (Jain et al., SC'24) artifact default locality penalty lambda: iteration time x 1.7 when a
#: job spans more than one node (``rutwik-n-jain/blox-pal``, branch artifact, runner default;
#: swept 1.0-3.0 in its Fig. 12).
PAL_NODE_PENALTY = 1.7

#: Extra penalty for spanning racks. No bundled public measurement separates rack from node
#: crossings, so the default adds nothing beyond the node penalty; set it to model an
#: oversubscribed spine.
DEFAULT_RACK_PENALTY = 1.0

#: Bytes of model state per parameter for mixed-precision Adam training: fp16 weights and
#: gradients plus fp32 master weights, momentum and variance (Rajbhandari et al., "ZeRO", SC'20,
#: Sec. 3.1: "16 Psi bytes"). Used by :func:`memory_gb` as a lower bound (activations excluded).
BYTES_PER_PARAM_STATE = 16.0

#: Restart (checkpoint + reload) and resize overheads in seconds, by source. Pass one to
#: ``Engine(restart_overhead=..., resize_overhead=...)``.
#:
#: - ``lucid``: 40 s for <= 8 GPUs, 60 s above (Lucid artifact, Hu et al. ASPLOS'23, derived from
#:   the 62 s Tiresias measured; see ``engine.lucid_overhead``);
#: - ``pollux``: 30 s restart penalty (Pollux artifact ``simulator/``, Qiao et al. OSDI'21; Sia
#:   uses the same 30 s);
#: - ``elasticflow``: per rescale 2 s base + 2 (log2 n + 1) s when not cached (ElasticFlow
#:   artifact ``scheduler/utils.py`` ``estimate_overhead``, Gu et al. ASPLOS'23, clusters under
#:   256 GPUs).
OVERHEADS: dict[str, Callable[[int], float]] = {
    "lucid": lambda gpus: 40.0 if gpus <= 8 else 60.0,
    "pollux": lambda gpus: 30.0,
    "elasticflow": lambda gpus: 2.0 + 2.0 * (math.log2(max(gpus, 1)) + 1.0),
}


def overhead(name: str) -> Callable[[int], float]:
    """A restart/resize overhead function (seconds as a function of GPU count) by source name."""
    try:
        return OVERHEADS[name]
    except KeyError:
        raise ConfigError(f"unknown overhead {name!r}; expected one of {sorted(OVERHEADS)}") from None


#: Canonical model name -> facts from the literature: aliases (names the source tables use),
#: parameter count in millions (for communication volume and memory), and PAL application class
#: (A = ResNet-like compute bound, B/C = BERT-like, D = PageRank-like memory bound).
#: ``class_src``: "pal" where PAL's profiles.json maps the model, "arch" where we assign it by
#: architecture (an inference: convolutional -> A, attention/recurrent -> B, embedding-bound -> D).
#: Models not listed here are treated as class A, the most variability-sensitive (an assumption).
MODEL_INFO: dict[str, dict[str, Any]] = {
    "resnet18": {"aliases": ["ResNet-18", "cifar10"], "params_m": 11.7, "cls": "A", "class_src": "arch",
                 "params_src": "He et al. CVPR'16; torchvision resnet18"},
    "resnet50": {"aliases": ["ResNet-50", "imagenet"], "params_m": 25.6, "cls": "A", "class_src": "pal",
                 "params_src": "He et al. CVPR'16; torchvision resnet50"},
    "resnet50_cifar10": {"aliases": [], "params_m": 23.5, "cls": "A", "class_src": "pal",
                         "params_src": "ResNet-50 with a 10-class head (torchvision resnet50)"},
    "vgg16": {"aliases": ["vggnet"], "params_m": 138.4, "cls": "C", "class_src": "pal (vgg19 -> C)",
              "params_src": "Simonyan & Zisserman ICLR'15; torchvision vgg16"},
    "inception3": {"aliases": [], "params_m": 27.2, "cls": "A", "class_src": "arch",
                   "params_src": "Szegedy et al. CVPR'16; torchvision inception_v3"},
    "yolov3": {"aliases": [], "params_m": 61.9, "cls": "A", "class_src": "arch",
               "params_src": "Redmon & Farhadi 2018 (YOLOv3-416)"},
    "cyclegan": {"aliases": ["CycleGAN"], "params_m": 28.3, "cls": "B", "class_src": "pal (DCGAN -> B)",
                 "params_src": "Zhu et al. ICCV'17: 2 ResNet generators (11.4M) + 2 PatchGANs (2.8M)"},
    "dcgan": {"aliases": [], "params_m": None, "cls": "B", "class_src": "pal", "params_src": None},
    "bert": {"aliases": [], "params_m": 110.0, "cls": "B", "class_src": "pal",
             "params_src": "Devlin et al. NAACL'19 (BERT-base)"},
    "gpt2": {"aliases": [], "params_m": 124.0, "cls": "B", "class_src": "pal",
             "params_src": "Radford et al. 2019 (GPT-2 small)"},
    "transformer": {"aliases": ["Transformer"], "params_m": 65.0, "cls": "B", "class_src": "arch",
                    "params_src": "Vaswani et al. NeurIPS'17 Table 3 (base)"},
    "lm": {"aliases": ["LM"], "params_m": None, "cls": "B", "class_src": "arch", "params_src": None},
    "deepspeech2": {"aliases": ["deepspeech"], "params_m": None, "cls": "B", "class_src": "arch",
                    "params_src": None},
    "a3c": {"aliases": ["A3C"], "params_m": None, "cls": "A", "class_src": "arch", "params_src": None},
    "recommendation": {"aliases": ["Recommendation"], "params_m": None, "cls": "D", "class_src": "arch",
                       "params_src": None},
    "ncf": {"aliases": [], "params_m": None, "cls": "D", "class_src": "arch", "params_src": None},
}

CLASSES = ("A", "B", "C", "D")

_ALIASES = {a.lower(): name for name, info in MODEL_INFO.items() for a in [name, *info["aliases"]]}


_BLOX_NAME = re.compile(r"^(.+?)model\d*$")


def canonical_model(name: str) -> str | None:
    """The canonical model name for ``name`` (any alias, case-insensitive; Blox/PCS-style names
    such as ``Resnet50Model128`` are read as their model, ``resnet50``), or None if unknown."""
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    m = _BLOX_NAME.match(key)
    return _ALIASES.get(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------
# Table derivation (from the raw shared files) and loading
# ---------------------------------------------------------------------------------------------

_GAVEL_KEY = re.compile(r"^(.*?)(?: \(batch size (\d+)\))?$")
_GAVEL_TYPES = {"k80": "K80", "p100": "P100", "v100": "V100"}


def _gavel_job(job_type: str) -> tuple[str, int]:
    m = _GAVEL_KEY.match(job_type)
    return canonical_model(m.group(1)), int(m.group(2) or 0)


def derive_tables(shared_traces: str | Path) -> dict[str, Any]:
    """Derive the compact perf tables from the raw public files in ``shared_traces`` (the shared
    ``traces/`` folder: ``gavel/``, ``elasticflow/``, ``pal/``; see its SOURCES.md).

    Returns the JSON-ready dict stored as ``traces/data/perf/perf_tables.json``.
    """
    import pandas as pd  # only for reading the raw csv files

    root = Path(shared_traces)
    gavel = json.loads(gzip.open(root / "gavel/simulation_throughputs.json.gz").read())
    # curves[model][batch] = {"source", "gpu_type", "n": [...], "ips": [...]} (iterations/s)
    curves: dict[str, dict[str, dict]] = {}
    speed: dict[str, dict[str, float]] = {}  # peak single-GPU samples/s per (model, type)
    cross_node: dict[str, dict[str, list[float]]] = {}

    def note_speed(model: str, gpu_type: str, batch: int, ips: float) -> None:
        s = ips * max(batch, 1)
        cur = speed.setdefault(model, {})
        cur[gpu_type] = max(cur.get(gpu_type, 0.0), s)

    def add_curve(model, batch, source, gpu_type, points: dict[int, float]) -> None:
        ns = sorted(n for n, v in points.items() if v > 0)
        curves.setdefault(model, {})[str(batch)] = {
            "source": source, "gpu_type": gpu_type, "n": ns, "ips": [points[n] for n in ns]}

    gavel_points: dict[tuple[str, int, str], dict[int, float]] = {}
    for wt, table in gavel.items():
        for key, entry in table.items():
            job_type, sf = ast.literal_eval(key)
            model, batch = _gavel_job(job_type)
            gavel_points.setdefault((model, batch, wt), {})[int(sf)] = float(entry["null"])
    for (model, batch, wt), pts in sorted(gavel_points.items()):
        if wt in _GAVEL_TYPES:
            note_speed(model, _GAVEL_TYPES[wt], batch, pts[1])
            if wt == "v100":
                add_curve(model, batch, "gavel", "V100", pts)
                unc = gavel_points.get((model, batch, "v100_unconsolidated"), {})
                for n, v in pts.items():
                    if n > 1 and n in unc and v > 0:
                        cross_node.setdefault(model, {}).setdefault(str(n), []).append(unc[n] / v)

    ef = tarfile.open(root / "elasticflow/elasticflow_throughputs.tar.gz")
    for member in ef.getmembers():
        folder, fname = member.name.split("/")
        gpu_type = folder.removeprefix("throughputs_")
        model = canonical_model(fname.removesuffix(".csv"))
        frame = pd.read_csv(ef.extractfile(member))
        source = "elasticflow" if gpu_type == "A100" else "pollux (via elasticflow)"
        for _, r in frame.iterrows():
            batch = int(r["global_batch_size"])
            pts = {int(c): float(r[c]) for c in frame.columns[1:]}
            note_speed(model, gpu_type, batch, pts[1])
            if str(batch) not in curves.get(model, {}):
                add_curve(model, batch, source, gpu_type, pts)

    # Median ratio to the reference type over the models measured on both.
    type_factor: dict[str, dict] = {}
    for t in sorted({t for by in speed.values() for t in by}):
        both = sorted(m for m, by in speed.items() if t in by and REFERENCE_GPU_TYPE in by)
        if not both:
            raise ConfigError(f"GPU type {t!r}: no model measured on it and on {REFERENCE_GPU_TYPE}")
        ratios = [speed[m][t] / speed[m][REFERENCE_GPU_TYPE] for m in both]
        type_factor[t] = {"ratio": round(float(np.median(ratios)), 6), "models": both}

    # Power-law speed-up fit S(n) = n**alpha over every curve point with n > 1 (least squares
    # through the origin in log-log space), S clipped at n (no super-linear speed-up).
    xs, ys = [], []
    for by_batch in curves.values():
        for c in by_batch.values():
            base = c["ips"][0] if c["n"][0] == 1 else None
            if base is None:
                continue
            for n, v in zip(c["n"], c["ips"]):
                if n > 1:
                    xs.append(math.log(n))
                    ys.append(math.log(min(v / base, n)))
    xs_a, ys_a = np.array(xs), np.array(ys)
    alpha = float((xs_a * ys_a).sum() / (xs_a * xs_a).sum())
    rmse = float(np.sqrt(np.mean((ys_a - alpha * xs_a) ** 2)))

    pairs: dict[str, dict[str, float]] = {}
    for wt, gpu_type in _GAVEL_TYPES.items():
        out = pairs.setdefault(gpu_type, {})
        for key, entry in gavel[wt].items():
            job_type, sf = ast.literal_eval(key)
            if sf != 1:
                continue
            m1, b1 = _gavel_job(job_type)
            alone = float(entry["null"])
            for other, val in entry.items():
                if other == "null":
                    continue
                m2, b2 = _gavel_job(ast.literal_eval(other)[0])
                out[f"{m1}@{b1}|{m2}@{b2}"] = round(float(val[0]) / alone, 6)
    pair_default = {t: float(np.median([v for v in p.values() if v > 0])) for t, p in pairs.items()}

    pv32 = pd.read_csv(root / "pal/32gpu-variability.csv")
    variability: dict[str, dict[str, list[float]]] = {
        "pal32": {c: [round(float(v), 6) for v in pv32[f"PerfVar_class{c}"]] for c in CLASSES}}
    q = np.linspace(0, 1, 101)
    for cluster, pattern in (("longhorn", "pal/{app}-longhorn-agg.csv.gz"),
                             ("frontera", "pal/frontera-{app}-agg.csv.gz")):
        by_app = {}
        for app in ("resnet", "bert", "pagerank"):
            perf = pd.read_csv(root / pattern.format(app=app))["perf"].to_numpy(dtype=float)
            by_app[app] = [round(float(v), 6) for v in np.quantile(perf / np.median(perf), q)]
        variability[cluster] = {"A": by_app["resnet"], "B": by_app["bert"], "C": by_app["bert"],
                                "D": by_app["pagerank"]}

    msr = tarfile.open(root / "gavel/gavel_msr_traces.tar.gz")
    mix: dict[str, int] = {}
    for member in msr.getmembers():
        if member.name.startswith("msr/seed=0/") and member.name.endswith(".trace"):
            for line in msr.extractfile(member).read().decode().splitlines():
                model, batch = _gavel_job(line.split("\t")[0])
                mix[f"{model}@{batch}"] = mix.get(f"{model}@{batch}", 0) + 1

    return {
        "reference_gpu_type": REFERENCE_GPU_TYPE,
        "speed_samples_per_s": {m: dict(sorted(by.items())) for m, by in sorted(speed.items())},
        "type_factor": type_factor,
        "curves": curves,
        "scaling_alpha": round(alpha, 6),
        "scaling_fit": {"points": len(xs), "rmse_log": round(rmse, 6),
                        "method": "least squares of log S(n) on log n through the origin"},
        "cross_node": {m: {n: round(float(np.median(v)), 6) for n, v in sorted(by.items())}
                       for m, by in sorted(cross_node.items())},
        "pairs": pairs,
        "pair_default": {t: round(v, 6) for t, v in pair_default.items()},
        "variability": variability,
        "gavel_trace_mix": dict(sorted(mix.items())),
    }


@functools.cache
def load_tables() -> dict[str, Any]:
    """The bundled derived tables (``dlsched_gym.traces`` package data ``data/perf/perf_tables.json``)."""
    text = resources.files("dlsched_gym.traces").joinpath("data", "perf", "perf_tables.json").read_text()
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# Lookups over the tables (usable by schedulers and augmentation)
# ---------------------------------------------------------------------------------------------

def _table_type(gpu_type: str) -> str | None:
    types = load_tables()["type_factor"]
    return next((t for t in types if t.lower() == str(gpu_type).lower()), None)


def _ref_speed(key: str) -> float:
    """A model's single-GPU samples/s on the reference type: measured, or else the median over its
    measured types of ``speed / type factor``."""
    tables = load_tables()
    speed, factor = tables["speed_samples_per_s"][key], tables["type_factor"]
    if REFERENCE_GPU_TYPE in speed:
        return speed[REFERENCE_GPU_TYPE]
    return float(np.median([v / factor[t]["ratio"] for t, v in speed.items()]))


def type_ratio(model: str, gpu_type: str, reference: str = REFERENCE_GPU_TYPE) -> float:
    """Throughput of ``model`` on ``gpu_type`` over ``reference`` (samples/s on one GPU).

    Measured cells come straight from the tables (peak over batch sizes). A type the model was
    not measured on uses the type's factor: the median, over the models measured on both, of
    that type's samples/s over the reference type's (``type_factor`` in the tables). An unknown
    model uses the type factors alone.
    """
    t, ref = _table_type(gpu_type), _table_type(reference)
    if t is None or ref is None:
        bad = gpu_type if t is None else reference
        raise ConfigError(f"GPU type {bad!r} has no throughput data; known types: "
                          f"{sorted(load_tables()['type_factor'])}")
    tables = load_tables()
    factor = tables["type_factor"]
    key = canonical_model(model)
    if key is None or key not in tables["speed_samples_per_s"]:
        return factor[t]["ratio"] / factor[ref]["ratio"]
    speed = tables["speed_samples_per_s"][key]
    base = _ref_speed(key)

    def value(tt: str) -> float:
        return speed.get(tt) or base * factor[tt]["ratio"]

    return value(t) / value(ref)


def _nearest_batch(options: Sequence[str], batch: int) -> str:
    """The option closest to ``batch`` in log2 distance (the smaller on a tie); the median option
    for an unknown batch size (``batch <= 0``)."""
    if batch <= 0:
        return sorted(options, key=int)[len(options) // 2]
    return min(options, key=lambda b: (abs(math.log2(max(int(b), 1)) - math.log2(batch)), int(b)))


def _curve(model: str, batch: int) -> dict | None:
    key = canonical_model(model)
    by_batch = load_tables()["curves"].get(key) if key else None
    if not by_batch:
        return None
    return by_batch[_nearest_batch(list(by_batch), int(batch))]


def speedup(model: str, batch: int, n: int) -> float:
    """S(n): throughput on ``n`` GPUs over one GPU for (model, batch), interpolated log-log
    between measured GPU counts (each clipped to at most linear: a few Gavel points, e.g. LM on
    8 V100s, measure super-linear), extended with the fitted exponent beyond them; unknown
    models get ``n ** alpha``.

    The curve is the one measured nearest the job's batch size: Gavel's keep the per-GPU batch
    fixed (weak scaling), ElasticFlow's and Pollux's the global batch (strong scaling)."""
    if n <= 0:
        return 0.0
    alpha = load_tables()["scaling_alpha"]
    c = _curve(model, batch)
    if c is None:
        return float(n) ** alpha
    ns, ips = np.array(c["n"], dtype=float), np.array(c["ips"], dtype=float)
    lx = np.log(ns)
    logs = np.minimum(np.log(ips / ips[0]), lx)
    x = math.log(n)
    if x <= lx[-1]:
        s = math.exp(float(np.interp(x, lx, logs)))
    else:
        s = math.exp(float(logs[-1]) + alpha * (x - lx[-1]))
    return min(s, float(n))


def iterations_per_second(model: str, batch: int, n: int, gpu_type: str = REFERENCE_GPU_TYPE) -> float:
    """Training iterations per second of (model, batch) on ``n`` GPUs of ``gpu_type``, from the
    model's measured curve converted across types by :func:`type_ratio`. Raises ConfigError for a
    model without a curve (iterations cannot be inferred for it)."""
    c = _curve(model, batch)
    if c is None:
        known = sorted(load_tables()["curves"])
        raise ConfigError(f"model {model!r} has no throughput curve; known: {known}")
    one = c["ips"][0] * type_ratio(model, gpu_type, c["gpu_type"])
    return one * speedup(model, batch, n)


def model_params(model: str) -> float:
    """Parameter count (millions) from ``MODEL_INFO``; unknown counts use the median of the known
    ones (a stated fallback, not a measurement)."""
    key = canonical_model(model)
    known = [i["params_m"] for i in MODEL_INFO.values() if i["params_m"]]
    value = MODEL_INFO[key]["params_m"] if key else None
    return float(value if value else np.median(known))


def memory_gb(model: str, batch: int = 0) -> float:
    """GPU memory (GB) of a model's training state: parameters x 16 bytes (ZeRO's count for
    mixed-precision Adam). A LOWER BOUND: activation memory (which grows with ``batch``) is not
    modelled, for want of a public per-model measurement in the bundled sources; ``batch`` is
    accepted so callers need not change when it is."""
    return model_params(model) * 1e6 * BYTES_PER_PARAM_STATE / 1e9


def pair_factor(model: str, batch: int, other: str, other_batch: int,
                gpu_type: str = REFERENCE_GPU_TYPE) -> float:
    """Throughput of (model, batch) co-located on one GPU with (other, other_batch), over its
    throughput alone: Gavel's measured pair entry (nearest batch sizes), or the median over all
    measured pairs on that type when either model is not in Gavel's table. 0.0 means Gavel
    measured the pair as infeasible (it does not fit)."""
    tables = load_tables()
    t = _table_type(gpu_type)
    pairs = tables["pairs"].get(t) or tables["pairs"][REFERENCE_GPU_TYPE]
    default = tables["pair_default"].get(t) or tables["pair_default"][REFERENCE_GPU_TYPE]
    a, b = canonical_model(model), canonical_model(other)
    batches: dict[str, list[str]] = {}
    for k in pairs:
        m, bb = k.split("|")[0].split("@")
        batches.setdefault(m, []).append(bb)
    if a not in batches or b not in batches:
        return default
    ka = f"{a}@{_nearest_batch(sorted(set(batches[a])), int(batch))}"
    kb = f"{b}@{_nearest_batch(sorted(set(batches[b])), int(other_batch))}"
    return pairs.get(f"{ka}|{kb}", default)


def sharing_factor(model: str, batch: int, gpu_type: str = REFERENCE_GPU_TYPE) -> float:
    """Expected co-location factor of (model, batch) with an unknown partner: the median of its
    measured feasible pair factors (Gavel), or the all-pairs median for models Gavel lacks."""
    tables = load_tables()
    t = _table_type(gpu_type) or REFERENCE_GPU_TYPE
    pairs = tables["pairs"].get(t) or tables["pairs"][REFERENCE_GPU_TYPE]
    key = canonical_model(model)
    mine = [k for k in pairs if k.split("@")[0] == key]
    if not mine:
        return tables["pair_default"].get(t, tables["pair_default"][REFERENCE_GPU_TYPE])
    nb = _nearest_batch(sorted({k.split("|")[0].split("@")[1] for k in mine}), int(batch))
    vals = [pairs[k] for k in mine if k.split("|")[0] == f"{key}@{nb}" and pairs[k] > 0]
    return float(np.median(vals)) if vals else tables["pair_default"][t]


def fits_on_gpu(models: Sequence[tuple[str, int]], gpu_mem_gb: float) -> bool:
    """True if the jobs ``[(model, batch), ...]`` fit together in one GPU of ``gpu_mem_gb`` by
    :func:`memory_gb` (model state only) and no pair among them is one Gavel measured as
    infeasible."""
    if sum(memory_gb(m, b) for m, b in models) > gpu_mem_gb:
        return False
    return all(pair_factor(m1, b1, m2, b2) > 0 for i, (m1, b1) in enumerate(models)
               for (m2, b2) in models[i + 1:])


def _ring_seconds(grad_bits: float, n: int, bandwidth_gbps: float) -> float:
    if not bandwidth_gbps > 0:
        raise ConfigError(f"bandwidth must be > 0 Gbit/s, got {bandwidth_gbps!r}")
    return 2.0 * (n - 1) / n * grad_bits / (bandwidth_gbps * 1e9)


def allreduce_seconds(model: str, n: int, bandwidth_gbps: float) -> float:
    """Seconds per iteration to ring-all-reduce fp32 gradients of ``model`` among ``n`` workers
    over links of ``bandwidth_gbps``: each worker sends ``2 (n-1)/n`` times the gradient size
    (Patarasuk & Yuan, JPDC 2009; the model NetPack's spec suggests:
    ``t_iter = t_comp + grad_bytes / bandwidth``)."""
    return _ring_seconds(model_params(model) * 1e6 * 32.0, n, bandwidth_gbps) if n > 1 else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class EstBalance:
    """How a job's logical workers (EasyScaleThreads, ESTs) spread over its GPUs.

    Attributes:
        ests: logical workers per GPU, in the order of the given speeds (0 = the GPU idles).
        iteration_time: ``max over GPUs of ests / speed``, the time of one training iteration in
            units of one worker's step on a speed-1 GPU (the GPUs of a job synchronise once per
            iteration, so the most loaded one sets the pace).
        effective_speed: ``logical_workers / iteration_time``: what the allocation is worth in
            speed-1 GPUs, each running one worker per step.
        waste: ``1 - effective_speed / sum(speeds)``: the fraction of the allocation's aggregate
            speed left idle by the imbalance (EasyScale's "waste").
    """

    ests: tuple[int, ...]
    iteration_time: float
    effective_speed: float
    waste: float


def est_balance(speeds: Sequence[float], logical_workers: int) -> EstBalance:
    """Spread ``logical_workers`` ESTs over GPUs of the given relative ``speeds`` so that the
    iteration time ``max_g ests_g / speeds_g`` is as small as possible (EasyScale, Li et al.,
    SC'23: a job keeps a fixed number of logical data-parallel workers; workers on one GPU take
    turns, so a GPU with k workers needs k steps per iteration).

    Each worker in turn goes to the GPU where it would finish earliest, ``(ests_g + 1) /
    speeds_g`` (ties: the faster GPU, then the lower index). For unit-size tasks on machines of
    different speeds this greedy rule gives the smallest makespan, so the result is optimal; the
    EasyScale planner restricts itself to equal loads per GPU type, which is never better.

    Raises:
        ConfigError: no GPU, a speed that is not finite and > 0, or fewer than one worker.
    """
    sp = [float(v) for v in speeds]
    if not sp:
        raise ConfigError("est_balance: speeds is empty; expected one speed per GPU")
    bad = [v for v in sp if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ConfigError(f"est_balance: speeds must be finite and > 0, got {bad[0]!r}")
    if not (isinstance(logical_workers, (int, np.integer)) and not isinstance(logical_workers, bool)
            and logical_workers >= 1):
        raise ConfigError(f"est_balance: logical_workers must be an integer >= 1, got {logical_workers!r}")
    p = int(logical_workers)
    ests = [0] * len(sp)
    if len(set(sp)) == 1:  # one speed: round-robin is optimal
        q, extra = divmod(p, len(sp))
        ests = [q + (i < extra) for i in range(len(sp))]
    else:
        heap = [(1.0 / v, -v, i) for i, v in enumerate(sp)]
        heapq.heapify(heap)
        for _ in range(p):
            _, neg, i = heap[0]
            ests[i] += 1
            heapq.heapreplace(heap, ((ests[i] + 1) / sp[i], neg, i))
    t = max(e / v for e, v in zip(ests, sp))
    eff = p / t
    return EstBalance(tuple(ests), t, eff, max(0.0, 1.0 - eff / sum(sp)))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class DurationModel:
    """Trace durations reproduced exactly; linear scaling for other GPU counts."""

    name = "duration"

    def reset(self, spec, jobs, rng) -> None:
        self._req = jobs.num_gpus

    def rate(self, job, gpus, sharers):
        return len(gpus) / float(self._req[job])


_LOCALITY = (None, "pal", "gavel", "bandwidth")
_VARIABILITY = (None, "pal32", "longhorn", "frontera")
_EXECUTION = ("ddp", "easyscale")


class ThroughputModel:
    """The duration model times switchable, measured factors (see the module docstring).

    Args:
        gpu_type: scale by the model's throughput on the gang's slowest GPU type over the
            reference type.
        scaling: use the model's measured speed-up curve for GPU counts other than requested
            (False: linear, as the duration model).
        locality: None, ``"pal"`` (constant penalties), ``"gavel"`` (measured cross-node ratio
            per model and GPU count, at most 1, falling back to ``node_penalty``) or ``"bandwidth"`` (ring
            all-reduce over the slowest spanned node link, added to the iteration time).
        node_penalty: iteration-time factor for spanning nodes (PAL's 1.7).
        rack_penalty: extra iteration-time factor for spanning racks (default 1.0: no data).
        variability: None or the per-GPU slowdown data set: ``"pal32"`` (PAL's 32 measured V100s;
            each GPU draws one measured GPU, keeping its four class values together),
            ``"longhorn"`` or ``"frontera"`` (each GPU draws from the measured per-class
            distribution, normalised to its median).
        sharing: slow co-located jobs down by their Gavel pair factor (unknown partner: the
            median of the model's measured pairs; see ``sharing_factor``), once per extra job.
        reference_gpu_type: the type whose speed defines the work unit.
        type_aliases: map cluster GPU type names to table types (e.g. ``{"philly-12GB": "K80"}``).
        execution: ``"ddp"`` (one worker per GPU in lock-step: a mixed gang runs at its slowest
            GPU) or ``"easyscale"`` (the job's ``max_gpus`` logical workers are spread over its
            GPUs by speed with :func:`est_balance`; the rate is ``S(n) / S(num_gpus)`` times
            ``(E / n) / (E_ref / num_gpus)``, E the allocation's effective speed, each GPU's speed
            being its type ratio over its variability slowdown, and ``E_ref`` the effective speed
            of the requested count of reference GPUs, so the requested allocation still runs at
            rate 1). Locality and sharing apply as in ``"ddp"``.
    """

    name = "throughput"

    def __init__(self, *, gpu_type: bool = True, scaling: bool = True, locality: str | None = "pal",
                 node_penalty: float = PAL_NODE_PENALTY, rack_penalty: float = DEFAULT_RACK_PENALTY,
                 variability: str | None = "pal32", sharing: bool = True,
                 reference_gpu_type: str = REFERENCE_GPU_TYPE,
                 type_aliases: Mapping[str, str] | None = None, execution: str = "ddp") -> None:
        if execution not in _EXECUTION:
            raise ConfigError(f"execution must be one of {_EXECUTION}, got {execution!r}")
        if locality not in _LOCALITY:
            raise ConfigError(f"locality must be one of {_LOCALITY}, got {locality!r}")
        if variability not in _VARIABILITY:
            raise ConfigError(f"variability must be one of {_VARIABILITY}, got {variability!r}")
        for label, v in (("node_penalty", node_penalty), ("rack_penalty", rack_penalty)):
            if not (v >= 1.0 and math.isfinite(v)):
                raise ConfigError(f"{label} must be a finite factor >= 1, got {v!r}")
        if _table_type(reference_gpu_type) is None:
            raise ConfigError(f"reference_gpu_type {reference_gpu_type!r} has no throughput data")
        self.gpu_type = bool(gpu_type)
        self.scaling = bool(scaling)
        self.locality = locality
        self.node_penalty = float(node_penalty)
        self.rack_penalty = float(rack_penalty)
        self.variability = variability
        self.sharing = bool(sharing)
        self.reference_gpu_type = reference_gpu_type
        self.type_aliases = dict(type_aliases or {})
        self.execution = execution

    # ------------------------------------------------------------------ reset
    def _cluster_types(self, spec: ClusterSpec) -> list[str]:
        out = []
        for t in spec.gpu_types:
            name = self.type_aliases.get(t, t)
            if _table_type(name) is None:
                raise ConfigError(
                    f"perf model 'throughput': cluster {spec.name!r} has GPU type {t!r} without "
                    f"throughput data; pass type_aliases={{{t!r}: <one of "
                    f"{sorted(load_tables()['type_factor'])}>}} or gpu_type=False"
                )
            out.append(name)
        return out

    def reset(self, spec, jobs, rng) -> None:
        """Look every table up once per distinct (model, batch size); draw per-GPU slowdowns."""
        req = np.asarray(jobs.num_gpus, dtype=np.int64)
        models = np.asarray(jobs.model, dtype=np.int64)
        batches = np.asarray(jobs.batch_size, dtype=np.int64)
        combos, inverse = np.unique(np.stack([models, batches], axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        names = [jobs.names["model"][m] for m, _ in combos]
        maxn = int(max(int(np.max(jobs.max_gpus, initial=1)), spec.max_node_gpus))
        ns = np.arange(maxn + 1)

        # scaling: S[combo, n]; rate factor S(n)/S(req) (linear when off)
        if self.scaling:
            curve = np.array([[speedup(nm, int(b), int(n)) for n in ns] for nm, (_, b) in zip(names, combos)])
        else:
            curve = np.tile(ns.astype(float), (len(combos), 1))
        self._curve = curve.tolist()
        self._combo = inverse.tolist()
        self._s_req = curve[inverse, req].tolist()

        # GPU type: ratio[combo][type index]
        types = self._cluster_types(spec) if self.gpu_type else []
        if self.gpu_type:
            ratio = [[type_ratio(nm, t, self.reference_gpu_type) for t in types] for nm in names]
        else:
            ratio = [[1.0] * len(spec.gpu_types) for _ in names]
        self._ratio = ratio
        gpu_node = spec.gpu_node
        self._gpu_type = spec.node_type_index[gpu_node].tolist()
        self._gpu_node = gpu_node.tolist()
        self._gpu_rack = spec.node_rack_index[gpu_node].tolist()
        self._single_type = len(spec.gpu_types) == 1
        self._node_bw = [n.bandwidth_gbps for n in spec.nodes]

        # locality: cross-node factor per (combo, n)
        if self.locality == "gavel":
            cross = load_tables()["cross_node"]
            self._cross = []
            for nm in names:
                by_n = cross.get(canonical_model(nm) or "", {})
                self._cross.append({int(k): min(v, 1.0) for k, v in by_n.items()})
        self._names = names
        self._batches = [int(b) for _, b in combos]
        self._req = req
        curves = load_tables()["curves"]
        self._has_curve = [canonical_model(nm) in curves for nm in names]
        self._grad_bits = [model_params(nm) * 1e6 * 32.0 for nm in names]  # fp32 gradients
        self._ips_req: dict[tuple[int, int], float] = {}

        # variability: per class, per GPU slowdown
        cls = [MODEL_INFO[k]["cls"] if (k := canonical_model(nm)) else "A" for nm in names]
        self._cls = [CLASSES.index(c) for c in cls]
        self._pv: list[list[float]] | None = None
        if self.variability is not None:
            data = load_tables()["variability"][self.variability]
            g = spec.num_gpus
            if self.variability == "pal32":
                rows = rng.integers(0, len(data["A"]), size=g)
                self._pv = [np.asarray(data[c])[rows].tolist() for c in CLASSES]
            else:
                q = np.linspace(0, 1, len(data["A"]))
                self._pv = [np.interp(rng.random(g), q, np.asarray(data[c])).tolist() for c in CLASSES]

        # sharing: per combo factor with an unknown partner, and per (combo, partner combo) pair,
        # on the reference type (pairs Gavel measured as infeasible use the all-pairs median)
        self._share = [sharing_factor(nm, int(b), self.reference_gpu_type) if self.sharing else 1.0
                       for nm, (_, b) in zip(names, combos)]
        default = load_tables()["pair_default"][_table_type(self.reference_gpu_type) or REFERENCE_GPU_TYPE]
        self._pair: dict[tuple[int, int], float] = {}
        self._pair_default = default
        # easyscale: logical workers P = max_gpus; norm = E_ref / num_gpus, the per-GPU effective
        # speed of the requested count of reference GPUs, P / (num_gpus ceil(P / num_gpus))
        self._workers = np.asarray(jobs.max_gpus, dtype=np.int64).tolist()
        self._norm = [p / (n * -(-p // n)) if n >= 1 else 1.0 for p, n in zip(self._workers, req.tolist())]

    # ------------------------------------------------------------------ rate
    def rate(self, job, gpus, sharers):
        return self._rate(job, gpus.tolist(), sharers, self.locality)

    def _rate(self, job: int, g: list[int], sharers: int, locality: str | None) -> float:
        c = self._combo[job]
        n = len(g)
        r = self._curve[c][n] / self._s_req[job]
        ratio = self._ratio[c]
        pv = self._pv[self._cls[c]] if self._pv is not None else None
        if self.execution == "easyscale":
            return self._easyscale_rate(job, c, g, n, r, ratio, pv, sharers, locality)
        if n == 1:  # the common case: no min/max over the gang, no locality
            x = g[0]
            r *= ratio[self._gpu_type[x]]
            if pv is not None:
                r /= pv[x]
        else:
            if self._single_type:
                r *= ratio[0]
            else:
                gt = self._gpu_type
                r *= min([ratio[gt[x]] for x in g])
            if locality is not None:
                gn = self._gpu_node
                if len({gn[x] for x in g}) > 1:
                    r = self._span_rate(job, c, g, n, r)
            if pv is not None:
                r /= max([pv[x] for x in g])
        if sharers > 1:
            r *= self._share[c] ** (sharers - 1)
        return r

    def _easyscale_rate(self, job: int, c: int, g: list[int], n: int, r: float, ratio: list[float],
                        pv: list[float] | None, sharers: int, locality: str | None) -> float:
        """Rate under ``execution="easyscale"``: ``r`` (the scaling factor) times the allocation's
        per-GPU effective speed over the requested allocation's (see the class docstring)."""
        gt = self._gpu_type
        speeds = [ratio[gt[x]] / pv[x] for x in g] if pv is not None else [ratio[gt[x]] for x in g]
        if n == 1:
            eff = speeds[0]
        else:
            eff = est_balance(speeds, self._workers[job]).effective_speed / n
        r *= eff / self._norm[job]
        if n > 1 and locality is not None and len({self._gpu_node[x] for x in g}) > 1:
            r = self._span_rate(job, c, g, n, r)
        if sharers > 1:
            r *= self._share[c] ** (sharers - 1)
        return r

    def _span_rate(self, job: int, c: int, g: list[int], n: int, r: float) -> float:
        """Rate ``r`` of a gang spanning nodes, with the configured locality penalty."""
        if self.locality == "bandwidth":
            bw = min(self._node_bw[self._gpu_node[x]] for x in g)
            return self._with_comm(job, c, n, r, bw)
        if self.locality == "gavel":
            factor = self._cross[c].get(n)
            r = r * factor if factor else r / self.node_penalty
        else:
            r /= self.node_penalty
        gr = self._gpu_rack
        if self.rack_penalty != 1.0 and any(gr[x] != gr[g[0]] for x in g):
            r /= self.rack_penalty
        return r

    def _with_comm(self, job: int, c: int, n: int, r: float, bandwidth_gbps: float) -> float:
        """Rate ``r`` after adding ring all-reduce time over ``bandwidth_gbps`` links to every
        iteration. A work unit holds ``ips_req`` iterations (the table's iterations/s at the
        requested allocation of the reference type), so an iteration takes ``1 / (r ips_req)``
        seconds before communication. Models without a throughput curve fall back to the
        constant ``node_penalty``."""
        if not self._has_curve[c]:
            return r / self.node_penalty
        key = (c, int(self._req[job]))
        ips_req = self._ips_req.get(key)
        if ips_req is None:
            ips_req = iterations_per_second(self._names[c], self._batches[c], key[1], self.reference_gpu_type)
            self._ips_req[key] = ips_req
        comm = _ring_seconds(self._grad_bits[c], n, bandwidth_gbps)
        return r / (1.0 + comm * r * ips_req)

    def rate_shared(self, job: int, gpus: np.ndarray, partners: Sequence[int]) -> float:
        """The job's rate on ``gpus`` when it shares them with the jobs ``partners``: the
        exclusive rate times Gavel's measured pair factor for each partner (model and batch
        size; the all-pairs median for pairs Gavel lacks or measured as infeasible, which
        :func:`fits_on_gpu` reports). With ``sharing=False`` partners cost nothing.

        The engine calls this (rather than :meth:`rate`, which uses the job's median pair factor)
        whenever a GPU is shared; schedulers choosing a partner can call it too."""
        r = self._rate(job, np.asarray(gpus, dtype=np.int64).reshape(-1).tolist(), 1, self.locality)
        if not self.sharing:
            return r
        c = self._combo[job]
        for k in partners:
            ck = self._combo[k]
            f = self._pair.get((c, ck))
            if f is None:
                f = pair_factor(self._names[c], self._batches[c], self._names[ck], self._batches[ck],
                                self.reference_gpu_type) or self._pair_default
                self._pair[(c, ck)] = f
            r *= f
        return r

    def rate_with_bandwidth(self, job: int, gpus: np.ndarray, node_bandwidth_gbps: Mapping[int, float],
                            sharers: int = 1) -> float:
        """The job's rate on ``gpus`` when each spanned node gives it ``node_bandwidth_gbps[node]``
        Gbit/s (e.g. its share from a NetPack-style steady-state estimate): the rate without a
        locality penalty, with ring all-reduce over the slowest share added to each iteration.
        A gang on one node has no network term."""
        g = np.asarray(gpus, dtype=np.int64).reshape(-1).tolist()
        r = self._rate(job, g, sharers, None)
        nodes = {self._gpu_node[x] for x in g}
        if len(nodes) <= 1:
            return r
        missing = nodes - set(node_bandwidth_gbps)
        if missing:
            raise ConfigError(f"job {job}: no bandwidth share given for node(s) {sorted(missing)}")
        bw = min(float(node_bandwidth_gbps[v]) for v in nodes)
        return self._with_comm(job, self._combo[job], len(g), r, bw)


#: Registry: name -> factory taking the model's keyword options.
PERF_MODELS: dict[str, Callable[..., PerfModel]] = {
    "duration": DurationModel,
    "throughput": ThroughputModel,
    "goodput": GoodputModel,
    "network": NetworkModel,
}


def make_perf(name: str | PerfModel, **options: Any) -> PerfModel:
    """A perf model by name with keyword options (or pass a model object through).

    Raises:
        ConfigError: unknown name, or an option the model does not accept.
    """
    if not isinstance(name, str):
        if options:
            raise ConfigError("options can only be given with a perf model name")
        return name
    try:
        factory = PERF_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown perf model {name!r}; expected one of {sorted(PERF_MODELS)}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        accepted = [p for p in inspect.signature(factory).parameters if p != "self"]
        raise ConfigError(f"perf model {name!r}: bad option(s) {sorted(options)}: {exc}; "
                          f"accepted: {accepted or 'none'}") from None
