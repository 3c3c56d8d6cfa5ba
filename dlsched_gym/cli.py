"""The ``dlsched`` command.

Subcommands (``dlsched COMMAND --help`` for each): ``simulate`` one run, ``evaluate`` a grid of
runs with a leaderboard, ``report`` plots and an HTML page of a results directory, ``traces`` the
trace catalogue, ``train`` an RL agent.

Exit codes: 0 success; 2 bad arguments or configuration (``ConfigError``, ``ClusterSpecError``,
argparse errors); 3 bad input data (``WorkloadError``, ``TraceFormatError``); 4 a scheduler error
(``SchedulerError``); 1 anything else. Errors print one line on stderr; ``--verbose`` adds the
traceback.

Subcommands are registered with :func:`command`; each imports what it needs when it runs, so the
command works (and ``--help`` answers) even where optional parts of the package are missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlsched_gym import __version__
from dlsched_gym.errors import (
    ClusterSpecError,
    ConfigError,
    SchedulerError,
    TraceFormatError,
    WorkloadError,
)

#: Error type -> exit status (first match wins); anything else exits with 1.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, 2),
    (ClusterSpecError, 2),
    (WorkloadError, 3),
    (TraceFormatError, 3),
    (SchedulerError, 4),
)


@dataclasses.dataclass(frozen=True)
class Command:
    """A registered subcommand: ``configure(parser)`` adds its arguments, ``run(args)`` does it
    and returns the exit status."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Registry of subcommands, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Decorator: register the decorated function as the handler of subcommand ``name``."""

    def deco(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = Command(name, help, configure, run)
        return run

    return deco


# ---------------------------------------------------------------------------------------- helpers
def parse_params(items: Sequence[str] | None, option: str = "--param") -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values are JSON literals where they parse (``3``, ``0.5``,
    ``true``, ``[1, 2]``), strings otherwise."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} {item!r}: expected key=value")
        if key in params:
            raise ConfigError(f"{option} {key!r} given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _with_augment(traces: list[str] | None, augment: dict[str, Any]) -> list[Any] | None:
    """Trace entries for an experiment, with ``--augment`` options attached when given."""
    if traces is None or not augment:
        return traces
    return [{"name": t, "augment": augment} for t in traces]


def _split(text: str | None, option: str, convert: Callable[[str], Any] = str) -> list[Any] | None:
    """Comma-separated values of ``option`` (None if the option was not given)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{option}: expected a comma-separated list, got {text!r}")
    try:
        return [convert(p) for p in parts]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(convert, "values")
        raise ConfigError(f"{option}: expected comma-separated {kind}, got {text!r}") from None


def _overhead_arg(text: str) -> float | str:
    if text == "lucid":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'lucid', got {text!r}") from None


def _scheduler_names() -> str:
    from dlsched_gym import baselines

    return ", ".join(baselines.available())


def _api(module: Any, name: str) -> Callable[..., Any]:
    """``module.name``, or a clear error where this installation lacks it."""
    fn = getattr(module, name, None)
    if fn is None:
        raise RuntimeError(f"{module.__name__}.{name} is not available in this installation")
    return fn


def _fmt_seconds(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(x) >= size:
            return f"{x / size:,.1f} {unit}"
    return f"{x:,.1f} s"


def _engine_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Engine options shared by ``simulate`` and ``evaluate`` (``evaluate`` has no defaults, so
    that only the options given override its experiment file)."""
    from dlsched_gym.perf import PERF_MODELS
    from dlsched_gym.placement import PLACEMENTS
    from dlsched_gym.predictors import PREDICTORS

    def option(flag: str, default: Any, help: str, **kwargs: Any) -> None:
        shown = f" (default {default})" if defaults else ""
        p.add_argument(flag, default=default if defaults else None, help=help + shown, **kwargs)

    option("--overhead", 0.0, "restart overhead after a preemption, in seconds, or 'lucid' (40 s up "
           "to 8 GPUs, 60 s above)", type=_overhead_arg, metavar="SECONDS")
    option("--perf", "duration", f"performance (rate) model: {', '.join(sorted(PERF_MODELS))}",
           metavar="NAME")
    p.add_argument("--perf-option", action="append", metavar="KEY=VALUE",
                   help="perf model option (repeatable), e.g. variability=null, locality=gavel; "
                        "see docs/perf-model.md")
    p.add_argument("--augment", action="append", metavar="KEY=VALUE",
                   help="synthesize missing job fields with Workload.augment (repeatable), e.g. "
                        "seed=0, deadlines=[0.5,1.5], elastic=[0.5,2]")
    option("--predictor", "auto", "duration predictor: 'auto' (what the scheduler's paper assumes, "
           f"e.g. history for qssf; else oracle), {', '.join(sorted(PREDICTORS))}",
           metavar="NAME")
    option("--placement", "consolidated", f"placement strategy: {', '.join(sorted(PLACEMENTS))}",
           metavar="NAME")
    p.add_argument("--engine-option", action="append", metavar="KEY=VALUE",
                   help="further Engine option (repeatable), e.g. dataset_size_tb=20 (MAST's data "
                        "placement), max_time=86400")
    p.add_argument("--drop-invalid", action="store_true", default=False if defaults else None,
                   help="drop unusable jobs (bad rows, jobs larger than the cluster) and record "
                        "how many, instead of failing")


# ---------------------------------------------------------------------------------------- simulate
def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", required=True,
                   help="a catalogue trace (dlsched traces list) or a trace file")
    p.add_argument("--cluster", required=True, metavar="SPEC",
                   help="cluster preset, NxG[-TYPE] (e.g. 4x8-V100) or a TOML file")
    p.add_argument("--scheduler", required=True, metavar="NAME",
                   help="a registered scheduler, or agent:PATH.zip / agent:pretrained:NAME")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="scheduler parameter (repeatable); VALUE is read as JSON where it parses")
    _engine_options(p, defaults=True)
    p.add_argument("--load", type=float, default=1.0, metavar="FACTOR",
                   help="arrival-rate factor: 2 packs the jobs into half the time (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: jobs.csv, timeline.csv, summary.json")
    p.epilog = f"registered schedulers: {_scheduler_names()}"


@command("simulate", "run one scheduler on one trace and cluster", _simulate_args)
def _simulate(args: argparse.Namespace) -> int:
    from dlsched_gym import evaluate

    params = parse_params(args.param)
    is_agent = args.scheduler.startswith(evaluate.AGENT_PREFIX)
    if is_agent and params:
        raise ConfigError("--param: agents take no parameters")
    schedulers = [] if is_agent else [{"name": args.scheduler, "params": params}]
    agents = [args.scheduler.removeprefix(evaluate.AGENT_PREFIX)] if is_agent else []
    augment = parse_params(args.augment, "--augment")
    trace = {"name": args.trace, "augment": augment} if augment else args.trace
    (cell,) = evaluate.expand_grid(
        schedulers, [trace], [args.cluster], loads=[args.load], seeds=[args.seed],
        agents=agents, perf=args.perf, perf_options=parse_params(args.perf_option, "--perf-option"),
        predictor=args.predictor, placement=args.placement, overhead=args.overhead,
        drop_invalid=args.drop_invalid,
        engine_options=parse_params(args.engine_option, "--engine-option"))
    output = evaluate.simulate_cell(cell, progress=True)
    out = Path(args.out)
    metrics = output.record["metrics"]
    summary = {**metrics, "scheduler": cell.label, "key": cell.key, "config": cell.config(),
               "version": __version__, "versions": output.record["versions"],
               "workload": output.record["workload"]}
    evaluate.atomic_write(out / "jobs.csv", lambda tmp: output.jobs.to_csv(tmp, index=False))
    evaluate.atomic_write(out / "timeline.csv", lambda tmp: output.timeline.to_csv(tmp, index=False))
    # Wall time apart, so that summary.json is bit-identical across runs of the same cell.
    evaluate.atomic_write_text(out / "timing.json", evaluate.to_json({"wall_s": output.wall_s}))
    evaluate.atomic_write_text(out / "summary.json", evaluate.to_json(summary))
    sec = {k: _fmt_seconds(math.nan if metrics[k] is None else metrics[k])
           for k in ("avg_jct", "p99_jct", "avg_queueing_delay")}
    print(f"{cell.label} on {cell.trace} / {cell.cluster}: {metrics['jobs_finished']} of "
          f"{metrics['jobs']} jobs finished; avg JCT {sec['avg_jct']}, p99 JCT {sec['p99_jct']}, "
          f"avg queueing {sec['avg_queueing_delay']}, GPU utilization "
          f"{100 * metrics['gpu_utilization']:.1f}%")
    print(f"wrote {out / 'summary.json'}, {out / 'jobs.csv'}, {out / 'timeline.csv'}, "
          f"{out / 'timing.json'}")
    return 0


# ---------------------------------------------------------------------------------------- evaluate
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    from dlsched_gym.evaluate import BACKENDS

    p.add_argument("--config", metavar="TOML",
                   help="experiment file (see examples/); the options below override its keys")
    p.add_argument("--trace", action="append",
                   help="a catalogue trace or a trace file (repeatable)")
    p.add_argument("--cluster", action="append", metavar="SPEC", help="cluster spec (repeatable)")
    p.add_argument("--schedulers", metavar="A,B,C", help="comma-separated scheduler names")
    p.add_argument("--agents", metavar="PATH[,PATH]",
                   help="comma-separated trained agents (.zip or pretrained:NAME)")
    p.add_argument("--seeds", metavar="0,1,2", help="comma-separated seeds (default 0)")
    p.add_argument("--loads", metavar="1,2", help="comma-separated arrival-rate factors (default 1)")
    p.add_argument("--imports", metavar="MOD[,MOD]",
                   help="modules that register your own schedulers, imported first in every worker "
                        "(they must be importable there: installed or on PYTHONPATH)")
    _engine_options(p, defaults=False)
    p.add_argument("--workers", type=int, help="parallel processes (default: one per CPU)")
    p.add_argument("--backend", choices=sorted(BACKENDS), help="execution backend (default local)")
    p.add_argument("--address", help="Ray cluster address (with --backend ray)")
    p.add_argument("--out", metavar="DIR", help="results directory (resumable)")
    p.epilog = f"registered schedulers: {_scheduler_names()}"


@command("evaluate", "run a grid of scheduler x trace x cluster x load x seed; print a leaderboard",
         _evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    from dlsched_gym import evaluate

    exp = evaluate.load_experiment(args.config) if args.config else evaluate.Experiment()
    overrides = {
        "schedulers": _split(args.schedulers, "--schedulers"),
        "agents": _split(args.agents, "--agents"),
        "traces": _with_augment(args.trace, parse_params(args.augment, "--augment")),
        "perf_options": parse_params(args.perf_option, "--perf-option") or None,
        "engine_options": parse_params(args.engine_option, "--engine-option") or None,
        "clusters": args.cluster,
        "seeds": _split(args.seeds, "--seeds", int),
        "loads": _split(args.loads, "--loads", float),
        "imports": _split(args.imports, "--imports"),
        "overhead": args.overhead, "perf": args.perf, "predictor": args.predictor,
        "placement": args.placement, "drop_invalid": args.drop_invalid, "workers": args.workers,
        "backend": args.backend, "address": args.address, "out": args.out,
    }
    exp = dataclasses.replace(exp, **{k: v for k, v in overrides.items() if v is not None})
    if exp.out is None:
        raise ConfigError("--out: a results directory is required (or 'out' in the experiment file)")
    cells = exp.cells()
    done = sum(evaluate.is_done(c, exp.out) for c in cells)
    options = {"address": exp.address} if exp.address is not None else {}
    workers = exp.workers if exp.workers is not None else (os.cpu_count() or 1)
    df = evaluate.run_grid(cells, exp.out, workers=workers, backend=exp.backend, **options)
    lb = evaluate.write_leaderboard(df, exp.out)
    print(evaluate.to_markdown(lb))
    out = Path(exp.out)
    print(f"{len(cells)} cells ({len(cells) - done} run now, {done} already done); wrote "
          f"{out / 'leaderboard.md'}, {out / 'leaderboard.csv'}")
    return 0


# ---------------------------------------------------------------------------------------- report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="DIR", help="a results directory of `dlsched evaluate`")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default DIR/report)")


@command("report", "plots and a self-contained HTML page of an evaluate results directory",
         _report_args)
def _report(args: argparse.Namespace) -> int:
    from dlsched_gym import report

    html = report.write_report(args.results, args.out)
    print(f"wrote {html} and the PNG plots beside it")
    return 0


# ---------------------------------------------------------------------------------------- traces
def _traces_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="traces_command", metavar="{list,show}")
    sub.required = True
    ls = sub.add_parser("list", help="the trace catalogue", parents=[_verbose_parent()])
    ls.set_defaults(traces_handler=_traces_list)
    show = sub.add_parser("show", help="statistics of one trace", parents=[_verbose_parent()])
    show.add_argument("name", metavar="NAME", help="trace name or file")
    show.add_argument("--plot", metavar="PATH", help="also plot the trace to this image file")
    show.set_defaults(traces_handler=_traces_show)


@command("traces", "list the trace catalogue or describe one trace", _traces_args)
def _traces(args: argparse.Namespace) -> int:
    return args.traces_handler(args)


def _traces_list(args: argparse.Namespace) -> int:
    from dlsched_gym import traces

    infos = _api(traces, "catalogue")()
    rows = [("name", "jobs", "span", "license")]
    for info in infos:
        jobs = info.jobs if isinstance(info.jobs, int) else None
        span = getattr(info, "span_seconds", getattr(info, "span", None))
        rows.append((str(info.name), f"{jobs:,}" if jobs is not None else str(info.jobs),
                     _fmt_seconds(span) if isinstance(span, (int, float)) else str(span),
                     str(info.license)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def _traces_show(args: argparse.Namespace) -> int:
    from dlsched_gym import evaluate, traces

    describe = _api(traces, "describe")
    workload = None
    if Path(args.name).is_file() or args.plot:
        workload = evaluate.load_trace(args.name)
    info = describe(workload if workload is not None else args.name)
    width = max((len(str(k)) for k in info), default=0)
    for key, value in info.items():
        text = value if isinstance(value, str) else evaluate.to_json(value, indent=None).strip()
        print(f"{str(key).ljust(width)}  {text}")
    if args.plot:
        _api(traces, "plot")(workload, args.plot)
        print(f"wrote {args.plot}")
    return 0


# ---------------------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", default="maskable-ppo",
                   help="RL algorithm: maskable-ppo (default), ppo, a2c or dqn ('-' and '_' are "
                        "interchangeable)")
    p.add_argument("--env", default="DLCluster-v0", help="Gymnasium env id (default DLCluster-v0)")
    p.add_argument("--env-kwargs", default="{}", metavar="JSON",
                   help='environment options as a JSON object, e.g. \'{"trace": "philly"}\'')
    p.add_argument("--timesteps", type=int, required=True, metavar="N", help="training steps")
    p.add_argument("--n-envs", type=int, default=4, metavar="M", help="parallel envs (default 4)")
    p.add_argument("--vec-env", choices=("subproc", "dummy"), default="subproc",
                   help="envs in worker processes (subproc, default) or all in this one (dummy: "
                        "faster on few cores with the compiled backend)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in DIR")


@command("train", "train an RL scheduling agent", _train_args)
def _train(args: argparse.Namespace) -> int:
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except ValueError as exc:
        raise ConfigError(f"--env-kwargs: expected a JSON object, got {args.env_kwargs!r} ({exc})") from None
    if not isinstance(env_kwargs, dict):
        raise ConfigError(f"--env-kwargs: expected a JSON object, got {args.env_kwargs!r}")
    for option, value in (("--timesteps", args.timesteps), ("--n-envs", args.n_envs)):
        if value < 1:
            raise ConfigError(f"{option}: expected an integer >= 1, got {value}")
    from dlsched_gym import agents

    path = _api(agents, "train")(
        algo=args.algo.replace("-", "_"), env_id=args.env, env_kwargs=env_kwargs, timesteps=args.timesteps,
        n_envs=args.n_envs, seed=args.seed, out_dir=Path(args.out), progress=True, resume=args.resume,
        vec_env=args.vec_env)
    print(f"saved {path}")
    return 0


# ---------------------------------------------------------------------------------------- main
def _verbose_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="print tracebacks on errors")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dlsched`` with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="dlsched", description="dlsched-gym: trace-driven GPU-cluster scheduling simulator")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help,
                           parents=[_verbose_parent()])
        cmd.configure(p)
        p.set_defaults(handler=cmd.run)
    return parser


def exit_code(exc: BaseException) -> int:
    """The exit status for an error (see :data:`EXIT_CODES`)."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dlsched`` with ``argv`` (``sys.argv[1:]`` by default); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argparse error (status 2)
        return exc.code if isinstance(exc.code, int) else 0
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("dlsched: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code = exit_code(exc)
        if args.verbose:
            traceback.print_exc()
        kind = "" if code != 1 else f"internal error ({type(exc).__name__}): "
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "" if args.verbose else " (--verbose for the traceback)" if code == 1 else ""
        print(f"dlsched: error: {kind}{first}{hint}", file=sys.stderr)
        return code
