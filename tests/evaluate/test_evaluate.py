"""The evaluation harness: grids, the experiment file, resuming, determinism, the leaderboard."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from dlsched_gym import evaluate
from dlsched_gym.errors import ClusterSpecError, ConfigError, SchedulerError, WorkloadError
from dlsched_gym.evaluate import Cell, expand_grid, leaderboard, load_experiment, run_cell, run_grid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_expand_grid_order_labels_and_keys(trace):
    cells = expand_grid(["fifo", {"name": "fifo", "params": {"backfill": True}}], [trace], ["1x4", "2x4"],
                        loads=[1, 2], seeds=[0, 1], agents=[{"path": "runs/ppo.zip", "label": "ppo"}])
    assert len(cells) == 3 * 2 * 2 * 2
    assert [c.label for c in cells[::8]] == ["fifo", "fifo[backfill=true]", "ppo"]
    assert cells[16].scheduler == "agent:runs/ppo.zip"
    assert expand_grid([], [trace], ["1x4"], agents=["runs/b/model.zip"])[0].label == "agent:runs/b/model.zip"
    assert (cells[0].cluster, cells[0].load, cells[0].seed) == ("1x4", 1.0, 0)
    assert (cells[1].cluster, cells[1].load, cells[1].seed) == ("1x4", 1.0, 1)
    assert len({c.key for c in cells}) == len(cells)
    assert Cell("fifo", trace, "1x4").key == Cell("fifo", trace, "1x4").key
    assert Cell("fifo", trace, "1x4").key != Cell("fifo", trace, "1x4", seed=1).key


@pytest.mark.parametrize(
    "kwargs, error, needle",
    [
        ({"schedulers": ["nope"]}, ConfigError, "unknown scheduler 'nope'"),
        ({"schedulers": [{"name": "fifo", "params": {"x": 1}}]}, ConfigError, "['x']"),
        ({"schedulers": [{"name": "fifo", "param": {}}]}, ConfigError, "schedulers[0]: unknown key"),
        ({"schedulers": [{"name": "fifo", "params": 3}]}, ConfigError, "schedulers[0].params"),
        ({"schedulers": []}, ConfigError, "no schedulers"),
        ({"schedulers": ["fifo", {"name": "sjf", "label": "fifo"}]}, ConfigError, "['fifo'] used twice"),
        ({"loads": [0]}, ConfigError, "loads"),
        ({"seeds": [-1]}, ConfigError, "seeds"),
        ({"seeds": [0.5]}, ConfigError, "seeds"),
        ({"clusters": ["4by8"]}, ClusterSpecError, "4by8"),
        ({"clusters": []}, ConfigError, "clusters"),
        ({"placement": "scatter"}, ConfigError, "scatter"),
        ({"overhead": -1}, ConfigError, "overhead"),
        ({"perf": "warp"}, ConfigError, "warp"),
    ],
)
def test_expand_grid_errors(trace, kwargs, error, needle):
    args = {"schedulers": ["fifo"], "traces": [trace], "clusters": ["1x4"], **kwargs}
    with pytest.raises(error) as info:
        expand_grid(args.pop("schedulers"), args.pop("traces"), args.pop("clusters"), **args)
    assert needle in str(info.value)


def test_example_experiment_parses():
    exp = load_experiment(EXAMPLES / "small.toml")
    assert exp.seeds == [0, 1, 2] and exp.clusters == ["2x8-V100"]
    assert exp.predictor == "noisy" and exp.predictor_options == {"sigma": 0.3}
    assert [s["name"] for s in exp.schedulers] == ["fifo", "fifo", "sjf", "tiresias"]
    assert len(exp.cells()) == 4 * 2 * 3


@pytest.mark.parametrize(
    "text, needles",
    [
        ("sedes = [0]\n", ["unknown key 'sedes'", "seeds"]),
        ("seeds = 3\n", ["'seeds'", "a list of integers"]),
        ("workers = 'many'\n", ["'workers'", "integer"]),
        ("drop_invalid = 1\n", ["'drop_invalid'", "true or false"]),
        ("perf = { sigma = 1 }\n", ["'perf'", "'name'"]),
        ("clusters = [4]\n", ["clusters[0]", "cluster spec"]),
        ("seeds = [0]\nworkers = = 2\n", ["invalid TOML", "line 2"]),
    ],
)
def test_experiment_file_errors(tmp_path, text, needles):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    for needle in needles:
        assert needle in str(info.value)
    assert "grid.toml" in str(info.value)


def test_experiment_cells_errors_name_the_file(tmp_path, trace):
    path = tmp_path / "grid.toml"
    path.write_text(f'clusters = ["1x4"]\ntraces = ["{trace}"]\n'
                    '[[schedulers]]\nname = "fifo"\nparams = { turbo = true }\n')
    expected = r"grid\.toml: scheduler 'fifo': unknown parameter\(s\) \['turbo'\]"
    with pytest.raises(ConfigError, match=expected):
        load_experiment(path).cells()


def test_run_cell_record(trace):
    rec = run_cell(Cell("fifo", trace, "1x4"))
    assert rec["metrics"]["jobs_finished"] == 6
    assert rec["config"]["scheduler"] == "fifo" and rec["key"] == Cell("fifo", trace, "1x4").key
    assert rec["versions"]["dlsched_gym"] and rec["wall_s"] >= 0


def test_resume_skips_finished_cells(tmp_path, trace, monkeypatch):
    runs = []
    real = evaluate.simulate_cell

    def counting(cell, **kwargs):
        runs.append(cell.key)
        return real(cell, **kwargs)

    monkeypatch.setattr(evaluate, "simulate_cell", counting)
    out = tmp_path / "res"
    cells = expand_grid(["fifo", "fifo-backfill"], [trace], ["1x4"], seeds=[0, 1])
    df = run_grid(cells, out, workers=1, progress=False)
    assert len(runs) == 4 and len(df) == 4
    df = run_grid(cells, out, workers=1, progress=False)
    assert len(runs) == 4 and len(df) == 4
    more = expand_grid(["fifo", "fifo-backfill"], [trace], ["1x4"], seeds=[0, 1, 2])
    df = run_grid(more, out, workers=1, progress=False)
    assert len(runs) == 6 and sorted(df["seed"]) == [0, 0, 1, 1, 2, 2]
    assert len(list((out / "cells").glob("*.json"))) == 6
    assert not list(out.rglob("*.tmp"))


def test_deterministic_across_worker_counts(tmp_path, trace):
    cells = expand_grid(["fifo", "fifo-backfill"], [trace], ["1x4", "2x2"], seeds=[0, 1],
                        placement="random", predictor="noisy")
    run_grid(cells, tmp_path / "w1", workers=1, progress=False)
    run_grid(cells, tmp_path / "w2", workers=2, progress=False)
    for sub in ("cells", "jobs", "timeline"):
        files = sorted(p.name for p in (tmp_path / "w1" / sub).iterdir())
        assert len(files) == len(cells)
        assert files == sorted(p.name for p in (tmp_path / "w2" / sub).iterdir())
        for name in files:
            assert (tmp_path / "w1" / sub / name).read_bytes() == (tmp_path / "w2" / sub / name).read_bytes()


class _FakeRay(types.ModuleType):
    """Just enough of Ray's API for the backend: tasks run when their result is fetched."""

    def __init__(self):
        super().__init__("ray")
        self.addresses = []

    def is_initialized(self):
        return bool(self.addresses)

    def init(self, address=None):
        self.addresses.append(address)

    def remote(self, num_cpus):
        return lambda fn: types.SimpleNamespace(remote=lambda *args: (fn, args))

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        fn, args = ref
        return fn(*args)


def test_ray_backend_gives_the_same_files(tmp_path, trace, monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    cells = expand_grid(["fifo", "fifo-backfill"], [trace], ["1x4"], seeds=[0, 1], predictor="noisy")
    run_grid(cells, tmp_path / "local", workers=1, progress=False)
    run_grid(cells, tmp_path / "ray", workers=3, backend="ray", address="ray://head:10001", progress=False)
    assert fake.addresses == ["ray://head:10001"]
    for sub in ("cells", "jobs", "timeline"):
        for f in (tmp_path / "local" / sub).iterdir():
            assert f.read_bytes() == (tmp_path / "ray" / sub / f.name).read_bytes()


def test_failed_cell_reported_after_the_others(tmp_path, trace):
    cells = expand_grid(["fifo"], [trace], ["1x4", "1x2"])
    with pytest.raises(WorkloadError, match=r"1 of 2 cells failed; first: fifo \[.*\]: .*needs 4 GPUs"):
        run_grid(cells, tmp_path / "res", workers=1, progress=False)
    assert evaluate.is_done(cells[0], tmp_path / "res") and not evaluate.is_done(cells[1], tmp_path / "res")


def test_drop_invalid_cell(tmp_path, trace):
    rec = run_cell(Cell("fifo", trace, "1x2", drop_invalid=True))
    assert rec["metrics"]["jobs"] == 4
    assert sum(rec["workload"]["dropped"].values()) == 2


def test_backend_errors(tmp_path, trace, monkeypatch):
    cells = expand_grid(["fifo"], [trace], ["1x4"])
    with pytest.raises(ConfigError, match="unknown backend 'dask'"):
        run_grid(cells, tmp_path, backend="dask")
    with pytest.raises(ConfigError, match="workers"):
        run_grid(cells, tmp_path, workers=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install 'dlsched-gym\[ray\]'"):
        run_grid(cells, tmp_path, backend="ray", progress=False)


def test_leaderboard_mean_and_ci():
    rows = [{"scheduler": s, "trace": "t", "cluster": "c", "load": 1.0, "seed": i, "avg_jct": v,
             "p99_jct": v, "avg_queueing_delay": v, "gpu_utilization": 0.5, "wall_s": 1.0}
            for s, vals in (("a", [1.0, 2.0, 3.0]), ("b", [0.5])) for i, v in enumerate(vals)]
    lb = leaderboard(pd.DataFrame(rows))
    assert lb["scheduler"].tolist() == ["b", "a"]
    a = lb.iloc[1]
    assert a["seeds"] == 3 and a["avg_jct_mean"] == 2.0
    assert a["avg_jct_ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)  # t(0.975, 2) s/sqrt(n)
    assert math.isnan(lb.iloc[0]["avg_jct_ci95"])
    assert "deadlines_met_mean" not in lb.columns
    with_deadlines = leaderboard(pd.DataFrame(rows).assign(deadlines_met=0.75))
    assert with_deadlines["deadlines_met_mean"].tolist() == [0.75, 0.75]
    text = evaluate.to_markdown(lb)
    assert "avg JCT (s)" in text and "2.0 ± 2.5" in text and "deadlines" not in text


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        evaluate.atomic_write(tmp_path / "x.json", boom)
    assert list(tmp_path.iterdir()) == []


USER_MODULE = '''
from dlsched_gym.baselines import register
from dlsched_gym.baselines.fifo import Fifo


@register("user-lifo")
class Lifo(Fifo):
    """Starts the most recently queued job that fits first."""

    name = "user-lifo"

    def schedule(self, view):
        plan, ops = view.plan(), []
        for j in reversed(list(view.queue)):
            gpus = plan.place(j)
            if gpus is not None:
                ops.append(Start(j, gpus))
        return ops


from dlsched_gym.scheduler import Start  # noqa: E402
'''


def test_imports_reach_every_worker(tmp_path, trace, monkeypatch):
    # The module is importable only through PYTHONPATH, and the grid's workers are spawned (they
    # inherit nothing from this process), so the scheduler exists there only via `imports`.
    (tmp_path / "user_scheds.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    cells = expand_grid(["user-lifo", "fifo"], [trace], ["1x4"], imports=["user_scheds"])
    assert cells[0].config()["imports"] == ["user_scheds"]
    assert "imports" not in Cell("fifo", trace, "1x4").config()  # keys of plain grids unchanged
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")
    monkeypatch.setattr(evaluate, "ProcessPoolExecutor",
                        lambda max_workers: ProcessPoolExecutor(max_workers, mp_context=spawn))
    df = run_grid(cells, tmp_path / "out", workers=2, progress=False).set_index("scheduler")
    # LIFO (newest first, skipping what does not fit) on 1x4: a 0-100 (2 GPUs); b (4) waits; c
    # 20-50; d (2) does not fit at 25; e 30-40; at 50 d fits: 50-90; b 100-150; f 200-260.
    # JCTs 100, 140, 30, 65, 10, 60 -> 405 / 6. Strict FIFO: a 0-100, b 100-150, c 150-180,
    # d 150-190, e 150-160, f 200-260 -> 100 + 140 + 160 + 165 + 130 + 60 = 755 / 6.
    assert df.loc["user-lifo", "avg_jct"] == pytest.approx(405 / 6)
    assert df.loc["fifo", "avg_jct"] == pytest.approx(755 / 6)
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        expand_grid(["fifo"], [trace], ["1x4"], imports=["no_such_module"])


def test_engine_options_reach_the_engine(tmp_path):
    # Regions a (node 0) and b (node 1), 4 GPUs each; two 4-GPU jobs reading dataset x, whose
    # one copy starts in a (their home). FIFO's best fit puts job 0 on node 0 and job 1 on node 1.
    # Without data placement both run 0-100; with dataset_size_tb the engine refuses job 1's
    # start in b, where x has no copy.
    trace = tmp_path / "t.csv"
    trace.write_text("job_id,submit_time,duration,num_gpus,region,dataset\n"
                     "p,0,100,4,a,x\nq,0,100,4,a,x\n")
    cluster = tmp_path / "c.toml"
    cluster.write_text('[[nodes]]\ngpus = 4\nregion = "a"\n[[nodes]]\ngpus = 4\nregion = "b"\n')
    plain = expand_grid(["fifo"], [str(trace)], [str(cluster)])
    df = run_grid(plain, tmp_path / "plain", progress=False)
    assert df.loc[0, "avg_jct"] == 100.0
    data = expand_grid(["fifo"], [str(trace)], [str(cluster)], engine_options={"dataset_size_tb": 1})
    assert data[0].key != plain[0].key and "engine_options" not in plain[0].config()
    with pytest.raises(SchedulerError, match="Replicate it there first"):
        run_grid(data, tmp_path / "data", progress=False)
    with pytest.raises(ConfigError, match=r"engine_options: unknown option\(s\) \['speed'\]"):
        expand_grid(["fifo"], [str(trace)], [str(cluster)], engine_options={"speed": 2})


def test_experiment_engine_table(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('schedulers = ["mast"]\nclusters = ["1x4"]\nengine = { dataset_size_tb = 20 }\n'
                    '[[traces]]\nname = "x.csv"\n')
    assert load_experiment(path).engine_options == {"dataset_size_tb": 20}
    path.write_text('engine = 3\n')
    with pytest.raises(ConfigError, match="key 'engine': expected a table"):
        load_experiment(path)
