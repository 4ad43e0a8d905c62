"""Is a student below its algorithm from scratch by more than the evaluation noise? (issue 20, the reincarnation suite's
``:defaults`` rows). Reads a ``results.json`` (several runs merged by ``scripts/merge_benchmark_runs.py``) and prints,
for one student and its baseline at the same seeds:

* per evaluation: student − scratch, mean ± standard error over seeds, and that mean in standard errors (t);
* per seed: the difference averaged over the evaluations after the first 10% of the budget, and over seeds the mean ±
  standard error of those averages (one number per seed, so evaluations of one run are not counted as independent);
* the noise of the baseline itself: per seed, the mean and largest |change| of its return from one evaluation to the
  next, and the standard deviation of its evaluations after the first 10%;
* the evaluations where a greedy policy sat at one return on all episodes (std 0), e.g. Acrobot's −500.

Example::

    python -m scripts.merge_benchmark_runs /tmp/acro RUN1 RUN2 ...
    python scripts/paired_noise.py /tmp/acro/results.json --env Acrobot-v1 \\
        --student distill_dqn:defaults --scratch dqn:defaults
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    parser.add_argument("--env", required=True)
    parser.add_argument("--student", default="distill_dqn:defaults")
    parser.add_argument("--scratch", default="dqn:defaults")
    args = parser.parse_args()
    with open(args.results) as handle:
        results = json.load(handle)
    rows = {(row["method"], row["seed"]): row for row in results["rows"] if row["env"] == args.env}
    seeds = sorted(seed for method, seed in rows if method == args.student and (args.scratch, seed) in rows)
    if len(seeds) < 2:
        raise SystemExit(f"{args.student} and {args.scratch} share {len(seeds)} seed(s) on {args.env}: need >= 2.")
    curves = {
        method: np.array([[record["mean_return"] for record in rows[method, seed]["curve"]] for seed in seeds])
        for method in (args.student, args.scratch)
    }
    stds = {
        method: np.array([[record["std_return"] for record in rows[method, seed]["curve"]] for seed in seeds])
        for method in (args.student, args.scratch)
    }
    steps = [record["step"] for record in rows[args.student, seeds[0]]["curve"]]
    budget = rows[args.student, seeds[0]]["budget"]
    after = np.array([step > 0.1 * budget for step in steps])
    difference = curves[args.student] - curves[args.scratch]
    n = len(seeds)
    print(f"{args.env}: {args.student} − {args.scratch}, seeds {seeds}")
    for column, step in enumerate(steps):
        mean, error = difference[:, column].mean(), difference[:, column].std(ddof=1) / np.sqrt(n)
        print(f"  {step:>7,}: {mean:+7.1f} ± {error:5.1f} (t = {mean / error if error else float('nan'):+.2f})")
    per_seed = difference[:, after].mean(axis=1)
    print(
        f"per seed, mean over the evaluations after 10%: {', '.join(f'{value:+.0f}' for value in per_seed)}; over "
        f"seeds {per_seed.mean():+.1f} ± {per_seed.std(ddof=1) / np.sqrt(n):.1f}"
    )
    below = difference[:, after] < -100
    print(f"seed-evaluations after 10% more than 100 below: {int(below.sum())} of {below.size}")
    for method, curve in curves.items():
        changes = np.abs(np.diff(curve, axis=1))
        print(
            f"{method}: |change| between consecutive evaluations per seed, mean / max: "
            + "; ".join(f"{c.mean():.0f} / {c.max():.0f}" for c in changes)
            + f"; all seeds mean {changes.mean():.0f}; std of the evaluations after 10% per seed: "
            + ", ".join(f"{c[after].std(ddof=1):.0f}" for c in curve)
        )
        stuck = (stds[method] == 0) & (curve <= curve.min())
        print(f"  evaluations at {curve.min():.0f} on every episode (std 0): {int(stuck.sum())} of {stuck.size}")


if __name__ == "__main__":
    main()
