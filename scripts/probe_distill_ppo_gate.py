"""
Issue 20: why DistillPPO's default (``distill_coef="auto"``, the stall gate for a weak teacher) is where it is against
PPO from scratch in the reincarnation suite. Re-runs ``distill_ppo:defaults`` jobs of an earlier suite run exactly as
the suite does (:func:`scripts.benchmark.runners.training_job`: same teacher record, env, model, evaluation env and
grid: the same returns as the suite's command) and records, at every PPO update, λ_t, the student's QDagger score s,
the stall gate's state (best score, scores without a new best) and the mean return of the student's last 10 training
episodes, beside the teacher's measured return (``--method ppo:defaults``: PPO from scratch, the mean return of its
last 10 training episodes at every update, what the gate would score). Prints one JSON line per update, then the
evaluation curve;
``--out DIR`` also writes ``DIR/results.json``, the run's ``results.json`` with these rows in place of its own (each
with its ``gate_trace``), which ``scripts/merge_benchmark_runs.py`` and the suite's report read like any suite run's.

    python scripts/probe_distill_ppo_gate.py RUN_DIR --env Acrobot-v1 --seeds 2 3 [--out DIR]

``RUN_DIR`` is an ``--out`` folder of ``python -m scripts.benchmark --suite reincarnation`` that measured the env's
teacher (its ``results.json`` and ``teachers`` snapshot are reused, so the teacher is the same one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a reincarnation suite run's --out folder (results.json)")
    parser.add_argument("--env", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--method", default="distill_ppo:defaults")
    parser.add_argument("--out", type=Path, default=None, help="a folder for results.json (the probe's rows)")
    args = parser.parse_args(argv)
    results_path = args.run_dir / "results.json"
    if not results_path.is_file():
        parser.error(f"{results_path} does not exist: give the --out folder of a reincarnation suite run.")
    results = json.loads(results_path.read_text())
    if results.get("suite") != "reincarnation" or args.env not in results.get("teachers", {}):
        parser.error(f"{results_path} is not a reincarnation run that measured {args.env}'s teacher.")

    from scripts.benchmark.cli import training_spec
    from scripts.benchmark.runners import training_job
    from scripts.benchmark.suite import get_suite
    from stable_baselines3 import PPO

    from sb3_distill.common.distill_coef import SCORE_EPISODES
    from sb3_distill.distill_ppo import DistillPPO

    from scripts.benchmark.suites.reincarnation import DEFAULTS_BUDGETS

    settings, teacher = results["settings"], results["teachers"][args.env]
    suite = get_suite("reincarnation", settings["teachers"])
    budget = settings["budgets"][args.env].get(args.method, DEFAULTS_BUDGETS[args.env])
    trace: list[dict[str, Any]] = []
    owner, hooked = (PPO, "train") if args.method.startswith("ppo") else (DistillPPO, "current_distill_coef")
    original = getattr(owner, hooked)

    def recorded_update(self: Any) -> None:
        returns = [info["r"] for info in list(self.ep_info_buffer)[-SCORE_EPISODES:]]
        train_return = float(sum(returns) / len(returns)) if returns else None
        trace.append(dict(update=len(trace) + 1, num_timesteps=int(self.num_timesteps), train_return=train_return))
        print(json.dumps(trace[-1]), flush=True)
        original(self)

    def recorded(self: Any) -> float:
        coef = original(self)
        gate = getattr(self, "_auto_stall_gate", None)
        returns = self._student_returns()
        trace.append(
            dict(
                update=len(trace) + 1,
                num_timesteps=int(self.num_timesteps),
                coef=float(coef),
                score=self.student_score(),
                gate_best=None if gate is None else gate.best,
                without_progress=None if gate is None else gate.without_progress,
                train_return=float(sum(returns) / len(returns)) if returns else None,
                teacher_reference=list(self.teacher_reference_returns()),
            )
        )
        print(json.dumps(trace[-1]), flush=True)
        return coef

    rows = []
    for seed in args.seeds:
        spec = training_spec(suite, args.env, args.method, seed, budget, teacher, settings, str(args.run_dir / "teachers"))
        trace = []
        setattr(owner, hooked, recorded_update if owner is PPO else recorded)
        try:
            row = training_job(spec)
        finally:
            setattr(owner, hooked, original)
        row["gate_trace"] = trace
        rows.append(row)
        curve = [(record["step"], round(record["mean_return"], 1)) for record in row["curve"]]
        print(json.dumps(dict(seed=seed, curve=curve)), flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            command = "python scripts/probe_distill_ppo_gate.py " + " ".join(sys.argv[1:] if argv is None else argv)
            out = dict(results, rows=rows, command=command, complete=seed == args.seeds[-1])
            (args.out / "results.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
