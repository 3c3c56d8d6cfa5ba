"""``dlsched`` exit codes and error output for bad input of every kind.

The contract (dlsched_gym/cli.py): 0 success; 2 bad arguments or configuration (argparse errors,
ConfigError, ClusterSpecError); 3 bad input data (WorkloadError, TraceFormatError); 4 a scheduler
error; 1 anything else (an internal error); 130 interrupted. An error is one line on stderr
(``dlsched: error: ...``) unless ``--verbose`` is given, which adds the traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dlsched_gym import evaluate
from dlsched_gym.baselines.fifo import Fifo
from dlsched_gym.cli import main
from dlsched_gym.scheduler import Start

HEADER = "job_id,submit_time,duration,num_gpus\n"
GOOD = HEADER + "a,0,100,2\nb,10,50,4\n"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def simulate(tmp_path: Path, trace: str | None = None, cluster: str = "1x4", scheduler: str = "fifo",
             *extra: str) -> list[str]:
    """argv of ``dlsched simulate`` (the good trace unless ``trace`` is given)."""
    trace = trace or write(tmp_path, "good.csv", GOOD)
    return ["simulate", "--trace", trace, "--cluster", cluster, "--scheduler", scheduler,
            "--out", str(tmp_path / "out"), *extra]


def evaluate_argv(tmp_path: Path, *extra: str) -> list[str]:
    """argv of ``dlsched evaluate`` on the good trace, results in tmp_path/res."""
    return ["evaluate", "--trace", write(tmp_path, "good.csv", GOOD), "--cluster", "1x4",
            "--schedulers", "fifo", "--out", str(tmp_path / "res"), *extra]


def trace_case(text: str):
    return lambda tmp: simulate(tmp, write(tmp, "bad.csv", text))


def cluster_case(toml: str):
    return lambda tmp: simulate(tmp, None, write(tmp, "cluster.toml", toml))


def experiment_case(toml: str):
    return lambda tmp: ["evaluate", "--config", write(tmp, "exp.toml", toml), "--out", str(tmp / "res")]


# name -> (argv builder, exit status, fragments of the one-line error)
CASES = {
    # bad input data: 3
    "trace: missing column": (trace_case("job_id,submit_time,duration\na,0,100\n"), 3,
                              ["bad.csv", "column 'num_gpus'", "required column missing"]),
    "trace: negative duration": (trace_case(HEADER + "a,0,-5,1\n"), 3,
                                 ["row 0 (job_id 'a')", "column 'duration'", "finite duration > 0"]),
    "trace: text in a number": (trace_case(HEADER + "a,0,5,four\n"), 3,
                                ["column 'num_gpus'", "expected an integer, got 'four'"]),
    "trace: infinite duration": (trace_case(HEADER + "a,0,inf,1\n"), 3, ["'duration'", "inf"]),
    "trace: duplicate job id": (trace_case(HEADER + "a,0,5,1\na,1,5,1\n"), 3,
                                ["row 1", "duplicate job id"]),
    "trace: no jobs": (trace_case(HEADER), 3, ["no jobs left to simulate"]),
    "trace: job larger than the cluster": (trace_case(HEADER + "a,0,5,8\n"), 3,
                                           ["needs 8 GPUs", "has 4", "--drop-invalid"]),
    # configuration and arguments: 2
    "trace: no such file": (lambda tmp: simulate(tmp, str(tmp / "nope.csv")), 2,
                            ["nope.csv", "neither a catalogue trace"]),
    "cluster: malformed spec": (lambda tmp: simulate(tmp, None, "4by8"), 2,
                                ["unknown cluster spec '4by8'", "'NxG'"]),
    "cluster: zero nodes": (lambda tmp: simulate(tmp, None, "0x4"), 2, ["at least one node", "0x4"]),
    "cluster TOML: syntax": (cluster_case("[[nodes]\ngpus = 4\n"), 2,
                             ["cluster.toml: cannot read cluster TOML", "line 1"]),
    "cluster TOML: unknown key": (cluster_case("[[nodes]]\ngpus = 4\ncolor = 'red'\n"), 2,
                                  ["[[nodes]] #0: unknown keys ['color']", "'gpus'"]),
    "cluster TOML: negative GPUs": (cluster_case("[[nodes]]\ngpus = -4\n"), 2,
                                    ["node 0: gpus must be an integer >= 0, got -4"]),
    "scheduler: unknown": (lambda tmp: simulate(tmp, None, "1x4", "nope"), 2,
                           ["unknown scheduler 'nope'", "fifo"]),
    "scheduler: unknown parameter": (lambda tmp: simulate(tmp, None, "1x4", "fifo", "--param", "speed=3"),
                                     2, ["unknown parameter(s) ['speed']", "backfill"]),
    "agent: no such file": (lambda tmp: simulate(tmp, None, "1x4", f"agent:{tmp / 'nope.zip'}"), 2,
                            ["nope.zip does not exist", "pretrained:<name>"]),
    "seed: negative": (lambda tmp: simulate(tmp, None, "1x4", "fifo", "--seed", "-1"), 2,
                       ["seeds: expected an integer >= 0, got -1"]),
    "load: zero": (lambda tmp: simulate(tmp, None, "1x4", "fifo", "--load", "0"), 2,
                   ["loads: expected a positive number"]),
    "evaluate: --seeds not integers": (lambda tmp: evaluate_argv(tmp, "--seeds", "a,b"), 2,
                                       ["--seeds: expected comma-separated integers, got 'a,b'"]),
    "evaluate: no --out": (lambda tmp: evaluate_argv(tmp)[:-2], 2, ["--out: a results directory"]),
    "experiment TOML: syntax": (experiment_case("seeds = [0\n"), 2, ["exp.toml: invalid TOML"]),
    "experiment TOML: unknown key": (experiment_case("sedes = [0]\n"), 2,
                                     ["exp.toml: unknown key 'sedes'", "'seeds'"]),
    "experiment TOML: wrong type": (experiment_case("seeds = 3\n"), 2,
                                    ["key 'seeds': expected a list of integers >= 0, got 3"]),
    "train: --env-kwargs not JSON": (lambda tmp: ["train", "--timesteps", "8", "--out", str(tmp / "t"),
                                                  "--env-kwargs", "{bad"], 2,
                                     ["--env-kwargs: expected a JSON object"]),
    "report: not a results folder": (lambda tmp: ["report", str(tmp / "nope")], 2,
                                     ["no results", "dlsched evaluate"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exit_code_and_one_line(tmp_path, capsys, case):
    build, code, needles = CASES[case]
    assert main(build(tmp_path)) == code
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("dlsched")]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dlsched: error: ") and "Traceback" not in captured.err
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "res" / "leaderboard.md").exists()


@pytest.mark.parametrize("argv, needle", [
    (["simulate", "--trace", "x.csv"], "the following arguments are required: --cluster"),
    (["simulate", "--trace", "x.csv", "--cluster", "1x4", "--scheduler", "fifo", "--out", "o",
      "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["evaluate", "--workers", "many"], "argument --workers: invalid int value"),
    (["evaluate", "--backend", "dask"], "argument --backend: invalid choice: 'dask'"),
    (["simulate", "--trace", "x.csv", "--cluster", "1x4", "--scheduler", "fifo", "--out", "o",
      "--speed", "3"], "unrecognized arguments: --speed 3"),
])
def test_argparse_errors_exit_2_with_usage(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dlsched")
    assert needle in err.strip().splitlines()[-1]


def test_scheduler_error_exits_4(tmp_path, capsys, monkeypatch):
    def bad_schedule(self, view):  # gives GPU 0 twice
        return [Start(next(iter(view.queue)), [0, 0])] if view.queue else []

    monkeypatch.setattr(Fifo, "schedule", bad_schedule)
    assert main(simulate(tmp_path)) == 4
    err = capsys.readouterr().err
    assert "dlsched: error: job 0: Start: duplicate GPU ids [0, 0]\n" in err and "Traceback" not in err


def test_error_line_is_not_glued_to_the_progress_bar(tmp_path, capsys, monkeypatch):
    def bad_schedule(self, view):
        return [Start(next(iter(view.queue)), [0, 0])] if view.queue else []

    monkeypatch.setattr(Fifo, "schedule", bad_schedule)
    assert main(simulate(tmp_path)) == 4
    err = capsys.readouterr().err
    assert "\ndlsched: error: " in "\n" + err.replace("\r", "\n")  # the error starts a line


def boom(*args, **kwargs):
    """Stands in for a bug anywhere below the CLI."""
    raise ZeroDivisionError("float division by zero")


@pytest.mark.parametrize("verbose", [[], ["-v"], ["--verbose"]])
@pytest.mark.parametrize("position", ["before", "after"])
def test_internal_error_exits_1_and_verbose_adds_the_traceback(tmp_path, capsys, monkeypatch, verbose,
                                                               position):
    monkeypatch.setattr(evaluate, "simulate_cell", boom)
    argv = [*verbose, *simulate(tmp_path)] if position == "before" else [*simulate(tmp_path), *verbose]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    if verbose:
        assert err[0] == "Traceback (most recent call last):"
        assert "ZeroDivisionError: float division by zero" in err
        assert err[-1] == "dlsched: error: internal error (ZeroDivisionError): float division by zero"
    else:
        assert err == ["dlsched: error: internal error (ZeroDivisionError): float division by zero "
                       "(--verbose for the traceback)"]


def test_interrupt_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "simulate_cell", interrupted)
    assert main(simulate(tmp_path)) == 130
    assert capsys.readouterr().err.strip() == "dlsched: interrupted"


def test_the_classes_have_distinct_codes(tmp_path, capsys, monkeypatch):
    argparse_code = main(["simulate"])
    config_code = main(simulate(tmp_path, None, "4by8"))
    data_code = main(simulate(tmp_path, write(tmp_path, "bad.csv", HEADER + "a,0,-5,1\n")))
    monkeypatch.setattr(evaluate, "simulate_cell", boom)
    internal_code = main(simulate(tmp_path))
    capsys.readouterr()
    assert (argparse_code, config_code, data_code, internal_code) == (2, 2, 3, 1)


# ---------------------------------------------------------------------------- former defects
# Bad input that once ended as an internal error (exit 1) or was silently accepted.
FORMER_DEFECTS = {
    "cluster TOML: unknown [cloud] key": (
        cluster_case("[[nodes]]\ngpus = 4\n[cloud]\nprize = 1\n"), 2, "cloud",
        "cluster.from_toml passes [cloud] keys to CloudPool(**...) unchecked: TypeError, exit 1"),
    "cluster TOML: nodes not tables": (
        cluster_case("nodes = [1]\n"), 2, "[[nodes]] #0",
        "cluster.from_toml iterates a [[nodes]] entry that is not a table: TypeError, exit 1"),
    "agent: not an SB3 zip": (
        lambda tmp: simulate(tmp, None, "1x4", "agent:" + write(tmp, "model.zip", "not a zip")), 2,
        "model.zip", "agents.policies.load_agent lets SB3's ValueError through: exit 1"),
    "evaluate: --workers 0": (
        lambda tmp: evaluate_argv(tmp, "--workers", "0"), 2, "workers: expected an integer >= 1",
        "cli._evaluate reads workers 0 as unset (`exp.workers or os.cpu_count()`) and runs: exit 0"),
    "scheduler: parameter of the wrong type": (
        lambda tmp: simulate(tmp, None, "1x4", "fifo", "--param", "backfill=maybe"), 2, "backfill",
        "baselines.make does not check parameter types: fifo runs with backfill='maybe', exit 0"),
}


@pytest.mark.parametrize("case", list(FORMER_DEFECTS))
def test_former_defects_are_clean_errors(tmp_path, capsys, case):
    build, code, needle, _ = FORMER_DEFECTS[case]
    assert main(build(tmp_path)) == code
    err = capsys.readouterr().err
    assert err.startswith("dlsched: error: ") and needle in err and "internal error" not in err
