"""
Merge the ``results.json`` of several runs of one suite (e.g. one env × seed per command, ``--first-seed``) into one
folder, then redraw it with ``--report-only``::

    python -m scripts.merge_benchmark_runs DIR RUN1 RUN2 ...
    python scripts/benchmark.py --suite mujoco --out DIR --report-only

Rows are concatenated, except a run's row that another run already holds (same env, method, seed and budget): an
identical one (a re-run, e.g. a from-scratch baseline run again beside each student) is kept once, a different one
stops the merge. Each env keeps the teacher record of the first run that measured it (envs in the suite's
order); probes (latency, memory, gradient profile) and the other record lists (:data:`SECTIONS`) are concatenated;
the commands are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Sections of ``results.json`` besides the rows that are lists of independent records, concatenated
SECTIONS = (
    "latency", "gradient_profile", "memory", "robustness",
    # the robustness suite's --parts
    "sim_to_real", "privileged", "robust_students", "multi_teacher", "halfcheetah_noise", "halfcheetah_robust",
)  # fmt: skip


def _curve(row: dict) -> list:
    return [(record["step"], record["mean_return"]) for record in row.get("curve", [])]


def main(out: Path, runs: list[Path]) -> None:
    from scripts.benchmark.suite import get_suite

    merged: dict = {}
    held: dict[tuple, dict] = {}
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        if not merged:
            merged = dict(results, rows=[], teachers={}, commands=[], failed=[], wall_seconds=0.0)
            for section in SECTIONS:
                merged[section] = []
        if results["suite"] != merged["suite"]:
            raise SystemExit(f"{run} is a {results['suite']} run, the first one a {merged['suite']} run.")
        merged["commands"].append(results["command"])
        merged["failed"] += results["failed"]
        merged["wall_seconds"] += results["wall_seconds"]
        for row in results["rows"]:
            key = (row["env"], row["method"], row["seed"], row.get("budget"))
            if key not in held:
                held[key] = row
                merged["rows"].append(row)
            elif _curve(held[key]) != _curve(row):
                raise SystemExit(f"{run}: {key} has another curve than the same row of an earlier run; merge one.")
        for section in SECTIONS:
            merged[section] += results.get(section, [])
        for env_id, teacher in results["teachers"].items():
            merged["teachers"].setdefault(env_id, teacher)
    order = list(get_suite(merged["suite"]).envs)
    merged["teachers"] = dict(sorted(merged["teachers"].items(), key=lambda item: order.index(item[0])))
    merged["command"] = " ; ".join(merged["commands"])
    merged["complete"] = True
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    print(f"{len(merged['rows'])} rows, envs {list(merged['teachers'])} -> {out / 'results.json'}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
