"""
Issue 20: the paired table of a student against its algorithm from scratch, read from reincarnation suite runs
(``python -m scripts.benchmark --suite reincarnation ... --out DIR``, one or several folders each): at every evaluation
the two means, the mean ± standard error of the per-seed difference (same seed), and how many seeds are more than
``--noise`` below; then per seed the final returns and the steps to the weak teacher's level, to 0.9 and to 1.0 of the
strong one. The format of docs/benchmarks.md "With the students' own defaults (issue 20)".

    python scripts/paired_defaults_table.py --env CartPole-v1 --student distill_ppo:defaults --scratch ppo:defaults \
        --runs DIR1 DIR2 ... [--teacher-run DIR] [--per-seed]

Rows of the same env × method × seed found in several folders must be identical (a re-run), else the script stops.
The teacher's record (its return, the random and strong references) comes from ``--teacher-run`` (default: the first
folder with the student's rows).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

NAMES = {
    "distill_ppo:defaults": "DistillPPO",
    "ppo:defaults": "PPO (SB3 defaults)",
    "distill_dqn:defaults": "DistillDQN",
    "dqn:defaults": "DQN (zoo)",
}


def load_rows(runs: list[Path], env_id: str) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[Path, dict[str, Any]]]:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    teachers: dict[Path, dict[str, Any]] = {}
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        if env_id in results["teachers"]:
            teachers[run] = results["teachers"][env_id]
        for row in results["rows"]:
            if row["env"] != env_id:
                continue
            key = (row["method"], row["seed"])
            curve = [(record["step"], record["mean_return"]) for record in row["curve"]]
            if key in rows and [(r["step"], r["mean_return"]) for r in rows[key]["curve"]] != curve:
                raise SystemExit(f"{env_id} {key}: two different curves in {rows[key]['run']} and {run}.")
            rows.setdefault(key, dict(row, run=run))
    return rows, teachers


def k(step: int) -> str:
    return f"{step / 1000:g}k"


def first_at(curve: list[dict[str, Any]], level: float) -> str:
    return next((k(record["step"]) for record in curve if record["normalized_score"] >= level), "never")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--student", default="distill_ppo:defaults")
    parser.add_argument("--scratch", default="ppo:defaults")
    parser.add_argument("--runs", nargs="+", type=Path, required=True)
    parser.add_argument("--teacher-run", type=Path, default=None)
    parser.add_argument("--noise", type=float, default=100.0, help="'seeds more than NOISE below' (default 100)")
    parser.add_argument("--per-seed", action="store_true", help="also every seed's returns at every evaluation")
    args = parser.parse_args()
    rows, teachers = load_rows(args.runs, args.env)
    seeds = sorted(seed for method, seed in rows if method == args.student and (args.scratch, seed) in rows)
    if not seeds:
        raise SystemExit(f"no seed of {args.env} with both {args.student} and {args.scratch} in {args.runs}.")
    teacher_run = args.teacher_run or next(row["run"] for (m, _), row in rows.items() if m == args.student)
    teacher = teachers[teacher_run]
    student = [rows[(args.student, seed)] for seed in seeds]
    scratch = [rows[(args.scratch, seed)] for seed in seeds]
    steps = [record["step"] for record in student[0]["curve"]]
    s_name, r_name = NAMES.get(args.student, args.student), NAMES.get(args.scratch, args.scratch)
    print(
        f"{s_name} vs {r_name} from scratch, seeds {', '.join(map(str, seeds))} (teacher {teacher['teacher_return']:.0f}, "
        f"random {teacher['random_return']:.0f}, strong {teacher['reference_return']:.0f})\n"
    )
    print("| | " + " | ".join(k(step) for step in steps) + " |")
    print("|---|" + "---|" * len(steps))

    def values(group: list[dict[str, Any]], i: int) -> list[float]:
        return [row["curve"][i]["mean_return"] for row in group]

    n = len(seeds)
    means_s = [sum(values(student, i)) / n for i in range(len(steps))]
    means_r = [sum(values(scratch, i)) / n for i in range(len(steps))]
    diffs = [[a - b for a, b in zip(values(student, i), values(scratch, i), strict=True)] for i in range(len(steps))]

    def mean_se(d: list[float]) -> str:
        mean = sum(d) / len(d)
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) if len(d) > 1 else 0.0
        return f"{mean:+.0f} ± {se:.0f}"

    print(f"| {s_name}, mean | " + " | ".join(f"{m:.0f}" for m in means_s) + " |")
    print(f"| {r_name}, mean | " + " | ".join(f"{m:.0f}" for m in means_r) + " |")
    print("| student − scratch, mean ± SE | " + " | ".join(mean_se(d) for d in diffs) + " |")
    below = [sum(x < -args.noise for x in d) for d in diffs]
    print(f"| seeds > {args.noise:g} below | " + " | ".join(f"{b}/{n}" for b in below) + " |")
    if args.per_seed:
        for seed, a, b in zip(seeds, student, scratch, strict=True):
            cells = [f"{x['mean_return']:.0f} / {y['mean_return']:.0f}" for x, y in zip(a["curve"], b["curve"], strict=True)]
            print(f"| seed {seed}, student / scratch | " + " | ".join(cells) + " |")
    print()
    finals = "; ".join(f"{a['final_return']:.0f} / {b['final_return']:.0f}" for a, b in zip(student, scratch, strict=True))
    strong = "; ".join(
        f"{first_at(a['curve'], 1.0)} / {first_at(b['curve'], 1.0)}" for a, b in zip(student, scratch, strict=True)
    )
    weak_level = student[0]["levels"]["weak"]
    weak = "; ".join(
        f"{first_at(a['curve'], weak_level)} / {first_at(b['curve'], weak_level)}"
        for a, b in zip(student, scratch, strict=True)
    )
    nine = "; ".join(
        f"{first_at(a['curve'], 0.9)} / {first_at(b['curve'], 0.9)}" for a, b in zip(student, scratch, strict=True)
    )
    print(
        f"per seed, {s_name} / {r_name}: final {finals}; steps to the strong level (1.0) {strong}; to the weak "
        f"teacher's {weak}\nsteps to 0.9 of the strong level: {nine}"
    )
    worst = min(range(len(steps)), key=lambda i: sum(diffs[i]))
    print(
        f"\nlowest mean difference at {k(steps[worst])}: {mean_se(diffs[worst])}; below on the mean at "
        f"{sum(sum(d) < 0 for d in diffs)} of {len(steps)} evaluations"
    )


if __name__ == "__main__":
    main()
