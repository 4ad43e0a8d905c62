"""
The command line: ``python -m scripts.benchmark --suite NAME --out DIR [...]``. Plans the suite's runs, measures the
teachers, runs every job in its own process and rewrites ``results.json``, ``benchmarks.md`` and the plot after each,
so that an interrupted benchmark keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .report import markdown_report, plot_curves
from .runners import run_jobs, teacher_job, training_job
from .stats import summarize
from .suite import Job, Suite, available_suites, get_suite


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Suite]:
    """
    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :return: the parsed arguments (``envs`` and ``methods`` filled with the suite's defaults) and the suite
    """
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--suite", default="classic", choices=available_suites())
    known, _ = first.parse_known_args(argv)
    suite = get_suite(known.suite)
    parser = argparse.ArgumentParser(
        prog="python -m scripts.benchmark",
        description=f"{(sys.modules[__package__].__doc__ or '').strip()}\n\nSuite {suite.name}: {suite.description}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--suite", default="classic", choices=available_suites(), help="what to run (default: classic)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.json, benchmarks.md, the plot)")
    parser.add_argument("--force", action="store_true", help="overwrite existing results in --out")
    parser.add_argument("--quick", action="store_true", help="1 seed, small budgets")
    parser.add_argument("--envs", nargs="+", default=list(suite.envs), choices=suite.envs, metavar="ENV")
    parser.add_argument("--methods", nargs="+", default=list(suite.methods), choices=list(suite.methods), metavar="METHOD")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds per method (default {suite.seeds[0]}; --quick 1)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are FIRST .. FIRST+SEEDS-1 (to add seeds to an earlier run's)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, each in its own process (default 2)")
    parser.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation")
    parser.add_argument("--grad-steps", type=int, default=None, help="timed gradient steps per run (0: none)")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every budget (for smoke tests)")
    parser.add_argument("--no-profile", action="store_true", help="skip the suite's extra probes (cost, memory, latency)")
    parser.add_argument("--probes-only", action="store_true", help="only the teachers and the suite's extra probes")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report and plot from --out/results.json")
    parser.add_argument("--zoo-dir", type=str, default=None, help="an rl-zoo3 folder holding the suite's teachers")
    parser.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="ENV=ZOO_ID",
        help=f"replace the teacher of ENV (repeatable; default: {', '.join(f'{k}={v}' for k, v in suite.teachers.items())})",
    )
    suite.add_arguments(parser)
    args = parser.parse_args(argv)
    teachers = {}
    for item in args.teacher:
        env_id, _, zoo_id = item.partition("=")
        if env_id not in suite.envs or zoo_id.count("/") != 1:
            parser.error(f"--teacher {item}: write ENV=ALGO/ENV_ID with ENV one of {', '.join(suite.envs)}.")
        teachers[env_id] = zoo_id
    return args, get_suite(suite.name, teachers)


def write_outputs(results: dict[str, Any], suite: Suite, out: Path, plot: bool = True) -> None:
    """
    Sort, summarize and write ``results.json``, ``benchmarks.md`` and (``plot``) the plot.

    :param results: the results so far (sorted in place)
    :param suite: the suite
    :param out: the output folder
    :param plot: also draw the curves
    """
    envs, methods = list(results["teachers"]), list(suite.methods)
    results["rows"].sort(key=lambda row: (envs.index(row["env"]), methods.index(row["method"]), row["seed"]))
    for section in ("gradient_profile", "memory", "latency"):
        results.setdefault(section, []).sort(key=lambda probe: (envs.index(probe["env"]), probe.get("variant", "")))
    results["summary"] = summarize(results["rows"], results["teachers"], suite.levels_for, suite.reference_method)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "benchmarks.md").write_text(markdown_report(results, suite))
    if plot and results["summary"]:
        plot_curves(results, suite, out / suite.plot_file)
    if plot:
        suite.extra_plots(results, out)  # also for --probes-only runs (the deployment suite's plot)


def measure_teachers(suite: Suite, envs: list[str], zoo_dir: str, n_workers: int, progress: Any) -> dict[str, dict[str, Any]]:
    """
    :param suite: the suite
    :param envs: gymnasium ids
    :param zoo_dir: the teachers' snapshot
    :param n_workers: processes at once
    :param progress: a tqdm bar
    :return: the teachers' records by env, in ``envs`` order
    """
    teachers: dict[str, dict[str, Any]] = {}
    jobs = [
        Job(teacher_job, (suite.name, suite.teachers, env_id, zoo_dir), f"teacher {env_id}", "teachers") for env_id in envs
    ]
    for job, result in run_jobs(jobs, n_workers, progress):
        if isinstance(result, BaseException):
            raise RuntimeError(f"{job.name} failed: {result!r}") from result
        teachers[result["env"]] = result
    return {env_id: teachers[env_id] for env_id in envs}


def training_spec(
    suite: Suite,
    env_id: str,
    method: str,
    seed: int,
    budget: int,
    teacher: dict[str, Any],
    settings: dict[str, Any],
    zoo_dir: str,
) -> dict[str, Any]:
    """
    :return: what :func:`~scripts.benchmark.runners.training_job` needs to train and evaluate one env × method × seed
        (no gradient-step profile, no latency measurement: :func:`training_jobs` sets those for its first seed)
    """
    return dict(
        suite=suite.name,
        env=env_id,
        method=method,
        seed=seed,
        budget=budget,
        reference_returns=(teacher["random_return"], teacher.get("reference_return", teacher["teacher_return"])),
        teacher_returns=(teacher["random_return"], teacher["teacher_return"]),
        levels=suite.levels_for(teacher),
        teacher_params=teacher["params"],
        eval_episodes=settings["eval_episodes"],
        grad_steps=0,
        measure_latency=False,
        zoo_dir=zoo_dir,
        settings=settings,
    )


def training_jobs(
    suite: Suite, args: argparse.Namespace, settings: dict[str, Any], teachers: dict[str, Any], zoo_dir: str
) -> list[Job]:
    """
    :param suite: the suite
    :param args: parsed arguments
    :param settings: the run's plan
    :param teachers: the teachers' records
    :param zoo_dir: the teachers' snapshot
    :return: one job per env × method × seed
    """
    jobs = []
    for env_id in args.envs:
        teacher = teachers[env_id]
        for method in args.methods:
            if not suite.trains(env_id, method):
                continue
            budget = settings["budgets"][env_id][method]
            for seed in range(args.first_seed, args.first_seed + settings["seeds"][method]):
                spec = training_spec(suite, env_id, method, seed, budget, teacher, settings, zoo_dir)
                spec.update(grad_steps=settings["grad_steps"], measure_latency=seed == args.first_seed)
                jobs.append(Job(training_job, (spec,), f"{env_id} {method} seed {seed}", weight=budget, seed=seed))
    return jobs


def run(args: argparse.Namespace, suite: Suite, argv: Sequence[str] | None) -> dict[str, Any]:
    """
    :param args: parsed arguments
    :param suite: the suite
    :param argv: the command line, for the record
    :return: the results (also written to ``args.out``)
    """
    import torch as th
    from tqdm.auto import tqdm

    started = time.perf_counter()
    settings = suite.plan(args)
    zoo_dir = str(suite.snapshot_teachers(args.envs, args.zoo_dir, args.out / "teachers"))
    progress = tqdm(total=len(args.envs) * 1_000, unit="step", desc=f"benchmark {suite.name}", dynamic_ncols=True)
    teachers = measure_teachers(suite, args.envs, zoo_dir, args.jobs, progress)
    jobs = [] if args.probes_only else training_jobs(suite, args, settings, teachers, zoo_dir)
    if not args.no_profile:
        jobs += suite.extra_jobs(settings, zoo_dir, args)
    progress.total += sum(job.weight for job in jobs)
    # Seed by seed, the longest first within a seed: the workers end together, results written after every run stay
    # balanced across methods, and an interrupted run still has complete seeds.
    jobs.sort(key=lambda job: (job.seed, -job.weight))
    results: dict[str, Any] = dict(
        suite=suite.name,
        command="python -m scripts.benchmark " + " ".join(sys.argv[1:] if argv is None else argv),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {th.__version__}, "
        "1 torch thread per run, no GPU",
        settings=settings,
        teachers=teachers,
        rows=[],
        summary=[],
        failed=[],
        complete=False,
        wall_seconds=0.0,
    )
    remaining = len(jobs)
    for job, result in run_jobs(jobs, args.jobs, progress):
        remaining -= 1
        if isinstance(result, BaseException):
            results["failed"].append(f"{job.name}: {type(result).__name__}: {result}")
            tqdm.write(f"FAILED {job.name}: {result!r}")
        else:
            results.setdefault(job.section, []).append(result)
        results["complete"] = remaining == 0
        results["wall_seconds"] = time.perf_counter() - started
        write_outputs(results, suite, args.out, plot=remaining == 0 or remaining % 10 == 0)
    progress.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """
    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :return: exit status (2: refused before anything was measured; 1: some runs failed)
    """
    args, suite = parse_args(argv)
    out: Path = args.out
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
        suite = get_suite(results.get("suite", "classic"), results.get("settings", {}).get("teachers"))
        write_outputs(results, suite, out)
        print(markdown_report(results, suite))
        return 0
    existing = [path for path in (out / "results.json", out / "benchmarks.md", out / suite.plot_file) if path.exists()]
    if existing and not args.force:
        print(f"{existing[0]} exists: choose another --out or pass --force to overwrite it.", file=sys.stderr)
        return 2
    try:
        suite.check(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(error, file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    results = run(args, suite, argv)
    print(markdown_report(results, suite))
    print(f"Wrote {out / 'results.json'}, {out / 'benchmarks.md'}, {out / suite.plot_file}")
    return 1 if results["failed"] else 0
