"""The ``dlsched`` command: hand-checked simulations, output files, and exit codes of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dlsched_gym import __version__, agents, traces
from dlsched_gym.baselines.fifo import Fifo
from dlsched_gym.cli import main, parse_params
from dlsched_gym.errors import ConfigError
from dlsched_gym.scheduler import Start

# Three jobs on one 4-GPU node. Strict FIFO: a runs 0-100; b (4 GPUs) waits for a, runs 100-150;
# c waits behind b (head-of-line blocking), runs 150-180. JCTs 100, 140, 160.
# With backfill, c starts at once (2 GPUs free): runs 20-50, JCT 30.
THREE_JOBS = "job_id,submit_time,duration,num_gpus\na,0,100,2\nb,10,50,4\nc,20,30,1\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def simulate(tmp_path: Path, trace: str, *extra: str, cluster: str = "1x4", scheduler: str = "fifo") -> int:
    return main(["simulate", "--trace", trace, "--cluster", cluster, "--scheduler", scheduler,
                 "--out", str(tmp_path / "out"), *extra])


def test_simulate_fifo_hand_computed(tmp_path, capsys):
    assert simulate(tmp_path, write(tmp_path, THREE_JOBS)) == 0
    jobs = pd.read_csv(tmp_path / "out" / "jobs.csv")
    for col in ("job_id", "submit_time", "start_time", "end_time", "jct", "queueing_delay", "num_gpus",
                "preemptions"):
        assert col in jobs.columns
    assert jobs["job_id"].tolist() == ["a", "b", "c"]
    assert jobs["start_time"].tolist() == [0, 100, 150]
    assert jobs["end_time"].tolist() == [100, 150, 180]
    assert jobs["jct"].tolist() == [100, 140, 160]
    assert jobs["queueing_delay"].tolist() == [0, 90, 130]
    assert jobs["preemptions"].tolist() == [0, 0, 0]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["avg_jct"] == pytest.approx(400 / 3)
    assert s["p50_jct"] == 140
    assert s["p95_jct"] == pytest.approx(158.0)  # linear interpolation between 140 and 160
    assert s["p99_jct"] == pytest.approx(159.6)
    assert s["avg_queueing_delay"] == pytest.approx(220 / 3)
    assert s["makespan"] == 180
    assert s["gpu_utilization"] == pytest.approx((2 * 100 + 4 * 50 + 1 * 30) / (4 * 180))
    assert s["jobs_finished"] == 3
    assert s["version"] == __version__
    assert s["config"]["scheduler"] == "fifo" and s["config"]["cluster"] == "1x4"
    assert "avg JCT" in capsys.readouterr().out
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left behind


def test_simulate_param_json_value(tmp_path):
    assert simulate(tmp_path, write(tmp_path, THREE_JOBS), "--param", "backfill=true") == 0
    jobs = pd.read_csv(tmp_path / "out" / "jobs.csv")
    assert jobs["jct"].tolist() == [100, 140, 30]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["config"]["params"] == {"backfill": True}
    assert s["avg_jct"] == pytest.approx(90.0)


def test_simulate_load_factor_halves_gaps(tmp_path):
    assert simulate(tmp_path, write(tmp_path, THREE_JOBS), "--load", "2") == 0
    jobs = pd.read_csv(tmp_path / "out" / "jobs.csv")
    assert jobs["submit_time"].tolist() == [0, 5, 10]


def test_parse_params():
    assert parse_params(["a=1", "b=0.5", "c=true", "d=[1, 2]", "e=hello", "f="]) == {
        "a": 1, "b": 0.5, "c": True, "d": [1, 2], "e": "hello", "f": ""}
    with pytest.raises(ConfigError, match="key=value"):
        parse_params(["novalue"])


BAD = THREE_JOBS.splitlines()


@pytest.mark.parametrize(
    "text, args, code, needles",
    [
        ("job_id,submit_time,duration\na,0,100\n", [], 3, ["num_gpus", "missing"]),
        ("\n".join([BAD[0], BAD[1], "b,10,-5,4"]) + "\n", [], 3, ["row 1", "'b'", "duration"]),
        ("\n".join([BAD[0], BAD[1], "b,10,50,four"]) + "\n", [], 3, ["row 1", "num_gpus", "four"]),
        ("\n".join([BAD[0], BAD[1], "big,10,50,8"]) + "\n", [], 3, ["'big'", "8 GPUs", "--drop-invalid"]),
        (THREE_JOBS, ["--scheduler", "no-such-sched"], 2, ["no-such-sched", "fifo"]),
        (THREE_JOBS, ["--param", "speed=3"], 2, ["speed", "backfill"]),
        (THREE_JOBS, ["--param", "speed"], 2, ["speed", "key=value"]),
        (THREE_JOBS, ["--cluster", "1y4"], 2, ["1y4", "NxG"]),
        (THREE_JOBS, ["--cluster", "0x4"], 2, ["0x4"]),
        (THREE_JOBS, ["--overhead", "soon"], 2, ["--overhead"]),
        (THREE_JOBS, ["--predictor", "psychic"], 2, ["psychic", "oracle"]),
    ],
)
def test_bad_input_exit_codes(tmp_path, capsys, text, args, code, needles):
    trace = write(tmp_path, text)
    argv = ["simulate", "--trace", trace, "--cluster", "1x4", "--scheduler", "fifo",
            "--out", str(tmp_path / "out")]
    for i in range(0, len(args), 2):  # later options override earlier ones (argparse keeps the last)
        argv += args[i : i + 2]
    assert main(argv) == code
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_missing_trace_file(tmp_path, capsys):
    assert simulate(tmp_path, str(tmp_path / "nope.csv")) in (2, 3)
    assert "nope.csv" in capsys.readouterr().err


def test_drop_invalid_records_dropped_jobs(tmp_path):
    trace = write(tmp_path, THREE_JOBS + "big,25,50,8\n")
    assert simulate(tmp_path, trace, "--drop-invalid") == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["jobs"] == 3
    assert sum(s["workload"]["dropped"].values()) == 1


def test_scheduler_error_exit_code_and_verbose(tmp_path, capsys, monkeypatch):
    def bad_schedule(self, view):  # starts the first queued job on a duplicated GPU id
        return [Start(next(iter(view.queue)), [0, 0])] if view.queue else []

    monkeypatch.setattr(Fifo, "schedule", bad_schedule)
    trace = write(tmp_path, "job_id,submit_time,duration,num_gpus\na,0,100,2\n")
    assert simulate(tmp_path, trace) == 4
    err = capsys.readouterr().err
    assert "duplicate GPU ids" in err and "Traceback" not in err
    # what a terminal shows: each line after its last carriage return (the cleared progress bar)
    shown = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    assert [line for line in shown if line.strip()] == [
        "dlsched: error: job 0: Start: duplicate GPU ids [0, 0]"]
    assert simulate(tmp_path, trace, "--verbose") == 4
    assert "Traceback" in capsys.readouterr().err


def test_argparse_errors_and_help(capsys):
    assert main(["simulate", "--trace", "x.csv"]) == 2
    assert main([]) == 2
    assert main(["evaluate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "registered schedulers" in out and "fifo-backfill" in out
    for cmd in ("simulate", "report", "train", "traces"):
        assert main([cmd, "--help"]) == 0
    assert main(["traces", "show", "--help"]) == 0


def test_traces_list_and_show(tmp_path, monkeypatch, capsys):
    class Info:
        def __init__(self, name, jobs, span, license):
            self.name, self.jobs, self.span, self.license = name, jobs, span, license

    plotted = []
    monkeypatch.setattr(traces, "catalogue", lambda: [Info("philly", 117325, 86400 * 83.0, "CC BY 4.0")],
                        raising=False)
    monkeypatch.setattr(traces, "describe", lambda w: {"name": getattr(w, "name", w), "jobs": 3},
                        raising=False)
    monkeypatch.setattr(traces, "plot", lambda w, path: plotted.append((w.name, path)), raising=False)
    assert main(["traces", "list"]) == 0
    out = capsys.readouterr().out
    assert "philly" in out and "117,325" in out and "83.0 d" in out and "CC BY 4.0" in out
    trace = write(tmp_path, THREE_JOBS)
    assert main(["traces", "show", trace, "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "jobs" in out and "3" in out
    assert plotted == [("trace", str(tmp_path / "p.png"))]


def test_train_calls_agents_train(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        return Path(kwargs["out_dir"]) / "model.zip"

    monkeypatch.setattr(agents, "train", fake_train, raising=False)
    argv = ["train", "--env-kwargs", '{"cluster": "1x4"}', "--timesteps", "64", "--n-envs", "2",
            "--seed", "3", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert calls == [{"algo": "maskable_ppo", "env_id": "DLCluster-v0", "env_kwargs": {"cluster": "1x4"},
                      "timesteps": 64, "n_envs": 2, "seed": 3, "out_dir": tmp_path, "progress": True,
                      "resume": False, "vec_env": "subproc"}]
    assert "model.zip" in capsys.readouterr().out
    assert main(argv + ["--vec-env", "dummy"]) == 0 and calls[-1]["vec_env"] == "dummy"
    capsys.readouterr()
    assert main(["train", "--env-kwargs", "[1]", "--timesteps", "5", "--out", str(tmp_path)]) == 2
    assert "--env-kwargs" in capsys.readouterr().err


def test_evaluate_with_config_and_resume(tmp_path, capsys):
    trace = write(tmp_path, THREE_JOBS)
    config = tmp_path / "grid.toml"
    config.write_text(f"""
seeds = [0, 1]
clusters = ["1x4"]
traces = [{json.dumps(trace)}]
[[schedulers]]
name = "fifo"
[[schedulers]]
name = "fifo"
label = "fifo+bf"
params = {{ backfill = true }}
""")
    out = tmp_path / "res"
    assert main(["evaluate", "--config", str(config), "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "fifo+bf" in text and "4 cells (4 run now, 0 already done)" in text
    lb = pd.read_csv(out / "leaderboard.csv")
    assert lb["scheduler"].tolist() == ["fifo+bf", "fifo"]
    assert lb["avg_jct_mean"].tolist() == pytest.approx([90.0, 400 / 3])
    assert "fifo+bf" in (out / "leaderboard.md").read_text()
    argv = ["evaluate", "--config", str(config), "--out", str(out), "--seeds", "0,1,2", "--workers", "1"]
    assert main(argv) == 0
    assert "6 cells (2 run now, 4 already done)" in capsys.readouterr().out


def test_report_command(tmp_path, capsys):
    # The plots themselves are checked in tests/evaluate/test_report.py.
    assert main(["report", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err


def test_evaluate_config_errors(tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text('seeds = "0,1"\n')
    assert main(["evaluate", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "grid.toml" in err and "'seeds'" in err and "list" in err
    assert main(["evaluate", "--trace", "t.csv", "--cluster", "1x4", "--schedulers", "fifo",
                 "--seeds", "0,x", "--out", str(tmp_path / "r")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["evaluate", "--trace", "t.csv", "--cluster", "1x4", "--schedulers", "fifo"]) == 2
    assert "--out" in capsys.readouterr().err


def _console_script() -> str:
    script = Path(sys.executable).with_name("dlsched")
    if not script.exists():
        pytest.skip("the dlsched console script is not installed next to this Python")
    return str(script)


def test_end_to_end_subprocess(tmp_path):
    trace = write(tmp_path, THREE_JOBS)
    out = tmp_path / "out"
    proc = subprocess.run([_console_script(), "simulate", "--trace", trace, "--cluster", "1x4",
                           "--scheduler", "fifo", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["makespan"] == 180


def test_end_to_end_subprocess_bad_data(tmp_path):
    trace = write(tmp_path, "job_id,submit_time,duration,num_gpus\na,0,100,x\n")
    proc = subprocess.run([_console_script(), "simulate", "--trace", trace, "--cluster", "1x4",
                           "--scheduler", "fifo", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("dlsched: error")]
    assert len(lines) == 1 and "num_gpus" in lines[0] and "row 0" in lines[0]


def test_simulate_perf_options_and_augment(tmp_path):
    from dlsched_gym import perf

    # One 1-GPU ResNet-50 job of 1000 s (on a V100). On a K80 with only the GPU-type factor on, it
    # runs at the K80/V100 throughput ratio of Gavel's table, so it takes 1000 / ratio seconds.
    trace = write(tmp_path, "job_id,submit_time,duration,num_gpus,model,batch_size\n"
                            "a,0,1000,1,ResNet-50,64\n")
    opts = ["--perf", "throughput", "--perf-option", "scaling=false", "--perf-option", "locality=null",
            "--perf-option", "variability=null", "--perf-option", "sharing=false",
            "--augment", "seed=0", "--augment", "deadlines=[0.5,1.5]"]
    assert simulate(tmp_path, trace, *opts, cluster="1x1-K80") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["avg_jct"] == pytest.approx(1000 / perf.type_ratio("ResNet-50", "K80"))
    assert summary["config"]["augment"] == {"seed": 0, "deadlines": [0.5, 1.5]}
    assert "deadlines_met" in summary  # augment synthesized deadlines
    assert main(["simulate", "--trace", trace, "--cluster", "1x1", "--scheduler", "fifo",
                 "--perf-option", "colour=red", "--perf", "throughput", "--out", str(tmp_path / "o2")]) == 2
