"""The rate models: the duration model is exact, and each throughput factor matches its source.

Numbers are either computed here from the raw public files in ``../shared/traces`` (tests skip
when that folder is absent) or written as literals with their source.
"""

from __future__ import annotations

import ast
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlsched_gym import perf
from dlsched_gym.baselines import make
from dlsched_gym.cluster import ClusterSpec, Node, make_cluster, uniform
from dlsched_gym.engine import Engine, JobTable
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records

SHARED = Path(__file__).resolve().parents[3] / "shared" / "traces"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="raw shared trace files not present")

#: Every throughput factor off: must be the duration model.
ALL_OFF = dict(gpu_type=False, scaling=False, locality=None, variability=None, sharing=False)
#: Only one factor on at a time.
ONLY = {
    "gpu_type": dict(ALL_OFF, gpu_type=True),
    "scaling": dict(ALL_OFF, scaling=True),
    "locality": dict(ALL_OFF, locality="pal"),
    "variability": dict(ALL_OFF, variability="pal32"),
    "sharing": dict(ALL_OFF, sharing=True),
}


@pytest.fixture(scope="module")
def gavel():
    if not SHARED.is_dir():
        pytest.skip("raw shared trace files not present")
    return json.loads(gzip.open(SHARED / "gavel/simulation_throughputs.json.gz").read())


def _jobs(rows):
    """A workload of (num_gpus, model, batch, duration) rows, submitted 1 s apart."""
    return from_records([
        {"job_id": f"j{i}", "submit_time": float(i), "duration": d, "num_gpus": n, "model": m,
         "batch_size": b}
        for i, (n, m, b, d) in enumerate(rows)
    ])


MIXED = [(1, "ResNet-50", 64, 100.0), (8, "Transformer", 128, 250.0), (4, "bert", 64, 33.0),
         (2, "A3C", 0, 77.0), (16, "LM", 20, 500.0), (3, "unknown-model", 0, 12.5), (1, "", 0, 9.0)]


def _run_times(workload, cluster, perf_model):
    frame = Engine(workload, cluster, perf=perf_model).run(make("fifo")).jobs_frame()
    return (frame["end_time"] - frame["start_time"]).to_numpy()


def _bound(model, cluster, workload, seed=0):
    spec = make_cluster(cluster)
    model.reset(spec, JobTable(workload.table), np.random.default_rng(seed))
    return model


# --------------------------------------------------------------------------- duration model

def test_duration_model_reproduces_trace_durations_exactly():
    w = _jobs(MIXED)
    ran = _run_times(w, "2x8-V100", "duration")
    assert np.array_equal(ran, w.table["duration"].to_numpy())


@pytest.mark.parametrize("cluster", ["2x8-V100", "2x8-K80", "4x4-A100"])
def test_throughput_with_every_factor_off_is_the_duration_model(cluster):
    w = _jobs(MIXED)
    assert np.array_equal(_run_times(w, cluster, perf.make_perf("throughput", **ALL_OFF)),
                          _run_times(w, cluster, "duration"))


def test_throughput_on_the_reference_type_and_requested_allocation_is_exact():
    # V100 = reference, one node per gang, exclusive GPUs, no variability: rate 1 for every job.
    w = _jobs([r for r in MIXED if r[0] <= 8])
    model = perf.make_perf("throughput", variability=None)
    assert np.allclose(_run_times(w, "2x8-V100", model), w.table["duration"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("factor", sorted(ONLY))
def test_each_factor_alone_is_neutral_where_it_should_be(factor):
    # On V100, one node, exclusive: a single factor other than variability changes nothing.
    w = _jobs([r for r in MIXED if r[0] <= 8])
    ran = _run_times(w, "1x8-V100", perf.make_perf("throughput", **ONLY[factor]))
    if factor == "variability":
        assert not np.allclose(ran, w.table["duration"].to_numpy())
    else:
        assert np.allclose(ran, w.table["duration"].to_numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- GPU type

def test_gpu_type_ratio_matches_gavel_literal():
    # Gavel simulation_throughputs.json (stanford-futuredata/gavel c4fa400, scheduler/), A3C alone:
    # v100 7.175767179667988 steps/s, k80 3.4387678290723933 steps/s.
    assert perf.type_ratio("A3C", "K80") == pytest.approx(3.4387678290723933 / 7.175767179667988, rel=1e-12)


@needs_shared
@pytest.mark.parametrize("model", ["ResNet-50", "Transformer", "LM", "CycleGAN"])
@pytest.mark.parametrize("wt", ["k80", "p100"])
def test_gpu_type_ratio_is_peak_samples_per_second_ratio_from_raw_gavel(gavel, model, wt):
    def peak(table):
        best = 0.0
        for key, entry in table.items():
            job_type, sf = ast.literal_eval(key)
            name, _, rest = job_type.partition(" (batch size ")
            if name == model and sf == 1:
                best = max(best, entry["null"] * (int(rest.rstrip(")")) if rest else 1))
        return best

    expected = peak(gavel[wt]) / peak(gavel["v100"])
    assert perf.type_ratio(model, wt.upper()) == pytest.approx(expected, rel=1e-5)


def test_cluster_type_selects_the_table_and_changes_run_times():
    w = _jobs([(1, "A3C", 0, 100.0), (8, "ResNet-50", 64, 100.0)])
    model = perf.make_perf("throughput", **ONLY["gpu_type"])
    v100 = _run_times(w, "1x8-V100", model)
    k80 = _run_times(w, "1x8-K80", model)
    assert np.allclose(v100, [100.0, 100.0])
    assert k80[0] == pytest.approx(100.0 * 7.175767179667988 / 3.4387678290723933, rel=1e-9)
    assert k80[1] == pytest.approx(100.0 / perf.type_ratio("ResNet-50", "K80"), rel=1e-9)


@pytest.mark.parametrize(("name", "model"), [
    ("ResNet-50", "resnet50"), ("imagenet", "resnet50"), ("cifar10", "resnet18"),
    ("Resnet50Model128", "resnet50"), ("TransformerModel256", "transformer"), ("GooglenetModel128", None),
])
def test_model_names_of_every_source_resolve(name, model):
    # Gavel job types, Pollux application names, PCS/Blox model names
    assert perf.canonical_model(name) == model


def test_unknown_model_uses_the_median_type_factor():
    factor = perf.load_tables()["type_factor"]["K80"]
    assert perf.type_ratio("no-such-model", "K80") == pytest.approx(factor["ratio"])
    tables = perf.load_tables()["speed_samples_per_s"]
    ratios = [tables[m]["K80"] / tables[m]["V100"] for m in factor["models"]]
    assert factor["ratio"] == pytest.approx(float(np.median(ratios)), rel=1e-5)


def test_mixed_type_gang_runs_at_the_slowest_type():
    spec = ClusterSpec(nodes=(Node(gpus=1, gpu_type="V100"), Node(gpus=1, gpu_type="K80")), name="mix")
    w = _jobs([(2, "A3C", 0, 10.0)])
    model = _bound(perf.make_perf("throughput", **ONLY["gpu_type"]), spec, w)
    assert model.rate(0, np.array([0, 1]), 1) == pytest.approx(perf.type_ratio("A3C", "K80"))


def test_unknown_cluster_gpu_type_is_an_error_unless_aliased():
    w = _jobs([(1, "A3C", 0, 10.0)])
    with pytest.raises(ConfigError, match="philly-12GB"):
        Engine(w, "philly", perf="throughput")
    aliases = {"philly-12GB": "K80", "philly-24GB": "P100"}
    Engine(w, "philly", perf=perf.make_perf("throughput", type_aliases=aliases))


# --------------------------------------------------------------------------- scaling

def test_scaling_curve_from_gavel_literal_and_elastic_rate():
    # Gavel v100, ResNet-50 batch 64: 4.394774823323071 steps/s on 1 GPU, 9.451949566394442 on 4.
    s4 = 9.451949566394442 / 4.394774823323071
    assert perf.speedup("ResNet-50", 64, 4) == pytest.approx(s4, rel=1e-9)
    w = from_records([{"job_id": "a", "submit_time": 0.0, "duration": 10.0, "num_gpus": 1, "min_gpus": 1,
                       "max_gpus": 4, "model": "ResNet-50", "batch_size": 64}])
    on = _bound(perf.make_perf("throughput", **ONLY["scaling"]), "1x8-V100", w)
    off = _bound(perf.make_perf("throughput", **ALL_OFF), "1x8-V100", w)
    assert on.rate(0, np.arange(4), 1) == pytest.approx(s4, rel=1e-9)
    assert off.rate(0, np.arange(4), 1) == 4.0


def test_default_scaling_is_the_fitted_power_law():
    tables = perf.load_tables()
    xs, ys = [], []
    for by_batch in tables["curves"].values():
        for c in by_batch.values():
            for n, v in zip(c["n"], c["ips"]):
                if n > 1:
                    xs.append(math.log(n))
                    ys.append(math.log(min(v / c["ips"][0], n)))
    alpha = float(np.dot(xs, ys) / np.dot(xs, xs))
    assert tables["scaling_alpha"] == pytest.approx(alpha, rel=1e-5)
    assert 0 < alpha < 1  # sub-linear
    assert perf.speedup("no-such-model", 0, 8) == pytest.approx(8 ** tables["scaling_alpha"])


def test_speedup_never_super_linear():
    # Gavel's LM (batch 20) measures 497.3 steps/s on 8 V100s vs 64.7 on one (7.7x); any gap above
    # n is clipped.
    for n in (2, 3, 8, 16, 64):
        assert perf.speedup("LM", 20, n) <= n


# --------------------------------------------------------------------------- locality

def test_locality_pal_penalty_for_spanning_nodes():
    w = _jobs([(2, "ResNet-50", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **ONLY["locality"]), "2x1-V100", w)
    assert model.rate(0, np.array([0, 1]), 1) == pytest.approx(1 / 1.7)  # PAL artifact lambda
    spread = _bound(perf.make_perf("throughput", **ONLY["locality"]), "1x2-V100", w)
    assert spread.rate(0, np.array([0, 1]), 1) == 1.0


def test_locality_rack_penalty_is_configurable():
    spec = uniform(4, 1, "V100", nodes_per_rack=2)
    w = _jobs([(2, "ResNet-50", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **dict(ALL_OFF, locality="pal", rack_penalty=2.0)), spec, w)
    assert model.rate(0, np.array([0, 1]), 1) == pytest.approx(1 / 1.7)       # same rack
    assert model.rate(0, np.array([0, 2]), 1) == pytest.approx(1 / 1.7 / 2.0)  # two racks


@needs_shared
def test_locality_gavel_uses_measured_unconsolidated_ratio(gavel):
    ratios = []
    for bs in (16, 32, 64, 128, 256):
        key = str((f"ResNet-18 (batch size {bs})", 2))
        ratios.append(gavel["v100_unconsolidated"][key]["null"] / gavel["v100"][key]["null"])
    w = _jobs([(2, "ResNet-18", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **dict(ALL_OFF, locality="gavel")), "2x1-V100", w)
    assert model.rate(0, np.array([0, 1]), 1) == pytest.approx(float(np.median(ratios)), rel=1e-5)


def test_bandwidth_rate_adds_ring_allreduce_time():
    w = _jobs([(2, "ResNet-50", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **ALL_OFF), "2x1-V100", w)
    gpus = np.array([0, 1])
    assert model.rate_with_bandwidth(0, np.array([0]), {}) == 0.5  # one node: no network term
    ips = perf.iterations_per_second("ResNet-50", 64, 2)
    comm = 2 * (1 / 2) * 25.6e6 * 4 / (10e9 / 8)  # ResNet-50: 25.6M fp32 gradients over 10 Gbit/s
    expected = 1.0 / (1.0 + comm * 1.0 * ips)
    assert model.rate_with_bandwidth(0, gpus, {0: 10.0, 1: 40.0}) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="node"):
        model.rate_with_bandwidth(0, gpus, {0: 10.0})


def test_bandwidth_locality_uses_node_links():
    spec = ClusterSpec(nodes=(Node(gpus=1, bandwidth_gbps=10.0), Node(gpus=1, bandwidth_gbps=100.0)))
    w = _jobs([(2, "ResNet-50", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **dict(ALL_OFF, locality="bandwidth")), spec, w)
    assert model.rate(0, np.array([0, 1]), 1) == pytest.approx(
        model.rate_with_bandwidth(0, np.array([0, 1]), {0: 10.0, 1: 10.0}))


# --------------------------------------------------------------------------- variability

@needs_shared
def test_variability_draws_measured_pal_gpus_and_gang_takes_the_slowest():
    raw = pd.read_csv(SHARED / "pal/32gpu-variability.csv")
    w = _jobs([(4, "ResNet-50", 64, 10.0), (4, "bert", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **ONLY["variability"]), "2x4-V100", w, seed=3)
    class_a = model._pv[perf.CLASSES.index("A")]
    assert set(np.round(class_a, 6)) <= set(np.round(raw["PerfVar_classA"], 6))
    gpus = np.arange(4)
    assert model.rate(0, gpus, 1) == pytest.approx(1 / max(class_a[:4]))
    class_b = model._pv[perf.CLASSES.index("B")]
    assert model.rate(1, gpus, 1) == pytest.approx(1 / max(class_b[:4]))


@pytest.mark.parametrize("data", ["pal32", "longhorn", "frontera"])
def test_variability_is_seeded(data):
    w = _jobs([(1, "ResNet-50", 64, 10.0)])
    opts = dict(ALL_OFF, variability=data)
    a = _bound(perf.make_perf("throughput", **opts), "4x4-V100", w, seed=7)
    b = _bound(perf.make_perf("throughput", **opts), "4x4-V100", w, seed=7)
    c = _bound(perf.make_perf("throughput", **opts), "4x4-V100", w, seed=8)
    assert a._pv == b._pv and a._pv != c._pv
    if data != "pal32":  # Longhorn/Frontera iteration times are normalised to the median GPU
        assert np.median(perf.load_tables()["variability"][data]["A"]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- sharing and memory

@needs_shared
def test_sharing_factor_is_median_of_gavel_pairs(gavel):
    entry = gavel["v100"][str(("ResNet-50 (batch size 64)", 1))]
    ratios = [v[0] / entry["null"] for k, v in entry.items() if k != "null" and v[0] > 0]
    assert perf.sharing_factor("ResNet-50", 64) == pytest.approx(float(np.median(ratios)), rel=1e-5)
    other = str(("Transformer (batch size 128)", 1))
    assert perf.pair_factor("ResNet-50", 64, "Transformer", 128) == pytest.approx(
        entry[other][0] / entry["null"], rel=1e-5)
    w = _jobs([(1, "ResNet-50", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **ONLY["sharing"]), "1x8-V100", w)
    assert model.rate(0, np.array([0]), 2) == pytest.approx(float(np.median(ratios)), rel=1e-5)
    assert model.rate(0, np.array([0]), 1) == 1.0


def test_sharing_in_the_engine_slows_colocated_jobs():
    from dlsched_gym.scheduler import Share, Start

    class Pack:
        name, round_seconds = "pack", None

        def reset(self, spec, jobs, rng):
            pass

        def schedule(self, view):
            return [Start(0, [0])] if view.now == 0 else [Share(1, [0])] if view.now == 1 else []

    spec = ClusterSpec(nodes=(Node(gpus=1),), gpu_share_limit=2)
    w = _jobs([(1, "ResNet-50", 64, 100.0), (1, "ResNet-50", 64, 100.0)])
    # the engine passes the partners, so the pair's own Gavel factor applies
    f = perf.pair_factor("ResNet-50", 64, "ResNet-50", 64)
    frame = Engine(w, spec, perf=perf.make_perf("throughput", **ONLY["sharing"])).run(Pack()).jobs_frame()
    # job 0 alone for 1 s, then both at rate f until job 0 ends
    assert frame["end_time"][0] == pytest.approx(1 + 99 / f)
    ends = Engine(w, spec, perf="duration").run(Pack()).jobs_frame()["end_time"]
    assert list(ends) == [100.0, 101.0]


def test_unknown_pair_uses_default():
    assert perf.pair_factor("bert", 64, "ResNet-50", 64) == perf.load_tables()["pair_default"]["V100"]


def test_memory_footprint_and_fit():
    assert perf.memory_gb("bert") == pytest.approx(110e6 * 16 / 1e9)  # BERT-base, ZeRO's 16 B/param
    assert perf.fits_on_gpu([("ResNet-50", 64), ("ResNet-18", 64)], 16.0)
    assert not perf.fits_on_gpu([("vgg16", 64), ("gpt2", 128)], 4.0)


def test_overheads_cited_values():
    assert perf.overhead("lucid")(8) == 40.0 and perf.overhead("lucid")(16) == 60.0
    assert perf.overhead("pollux")(4) == 30.0
    assert perf.overhead("elasticflow")(4) == pytest.approx(2 + 2 * 3)
    with pytest.raises(ConfigError):
        perf.overhead("nope")


# --------------------------------------------------------------------------- registry and tables

def test_make_perf_errors():
    with pytest.raises(ConfigError, match="unknown perf model"):
        perf.make_perf("nope")
    with pytest.raises(ConfigError, match="accepted"):
        perf.make_perf("throughput", colour="red")
    with pytest.raises(ConfigError, match="locality"):
        perf.make_perf("throughput", locality="everywhere")
    with pytest.raises(ConfigError, match="node_penalty"):
        perf.make_perf("throughput", node_penalty=0.5)
    assert perf.make_perf("duration").name == "duration"


@needs_shared
def test_bundled_tables_are_derived_from_the_raw_files():
    derived = json.loads(json.dumps(perf.derive_tables(SHARED)))
    assert derived == perf.load_tables()


def test_throughput_runs_are_deterministic_under_the_engine_seed():
    w = _jobs(MIXED)

    def ends(seed):
        eng = Engine(w, "2x8-V100", perf=perf.make_perf("throughput"), seed=seed)
        return eng.run(make("fifo")).jobs_frame()["end_time"].to_numpy()

    assert np.array_equal(ends(1), ends(1))
    assert not np.array_equal(ends(1), ends(2))  # per-GPU variability is drawn from the seed


@needs_shared
def test_rate_shared_uses_the_partners_measured_pair(gavel):
    entry = gavel["v100"][str(("ResNet-50 (batch size 64)", 1))]
    w = _jobs([(1, "ResNet-50", 64, 10.0), (1, "ResNet-18", 16, 10.0), (1, "ResNet-50", 128, 10.0),
               (1, "bert", 64, 10.0)])
    model = _bound(perf.make_perf("throughput", **ONLY["sharing"]), "1x8-V100", w)
    gpu = np.array([0])
    with_r18 = entry[str(("ResNet-18 (batch size 16)", 1))][0] / entry["null"]
    assert model.rate_shared(0, gpu, [1]) == pytest.approx(with_r18, rel=1e-5)
    default = perf.load_tables()["pair_default"]["V100"]
    assert entry[str(("ResNet-50 (batch size 128)", 1))][0] == 0.0  # measured infeasible
    assert model.rate_shared(0, gpu, [2]) == pytest.approx(default)
    assert model.rate_shared(0, gpu, [3]) == pytest.approx(default)  # BERT: not in Gavel
    assert model.rate_shared(0, gpu, [1, 3]) == pytest.approx(with_r18 * default, rel=1e-5)
    off = _bound(perf.make_perf("throughput", **ALL_OFF), "1x8-V100", w)
    assert off.rate_shared(0, gpu, [1]) == 1.0
