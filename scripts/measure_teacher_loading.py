"""
Measure the safe teacher reader against SB3's (``trust_remote_code=True``): load time side by side, and whether both
give the same teacher (weights and statistics fingerprint, spaces, and greedy actions on sampled observations).

Every run folder (``ALGO/ENV_N`` holding ``ENV.zip``) under the given roots is loaded ``--repeats`` times each way,
the two ways alternating (safe first on even repeats), after one warm-up load each; the median is reported.

    OMP_NUM_THREADS=1 python scripts/measure_teacher_loading.py tests/data/zoo sb3_distill/teachers/bundled
    OMP_NUM_THREADS=1 python scripts/measure_teacher_loading.py /path/to/rl-trained-agents --repeats 9 --output runs.jsonl

``--output`` appends one JSON line per agent.
"""

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from sb3_distill import load_teacher
from sb3_distill.errors import TeacherError


def run_folders(roots: list[Path]) -> list[Path]:
    """
    :param roots: rl-zoo3 log folders
    :return: their run folders ``ALGO/ENV_N`` that hold ``ENV.zip`` (also under ``weak/``)
    """
    found = []
    for root in roots:
        for zip_file in sorted(root.glob("**/*_[0-9]*/*.zip")):
            match = re.match(r"^(?P<env>.+)_\d+$", zip_file.parent.name)
            if match and zip_file.stem == match.group("env"):
                found.append(zip_file.parent)
    return found


def load_times(run: Path, repeats: int) -> dict[str, float]:
    """
    :param run: a run folder
    :param repeats: timed loads each way
    :return: median seconds of a safe load and of a load with SB3's reader
    """
    times: dict[bool, list[float]] = {False: [], True: []}
    for trust in (False, True):  # warm-up: imports, env registration, file cache
        load_teacher(run, device="cpu", trust_remote_code=trust)
    for index in range(repeats):
        for trust in (False, True) if index % 2 == 0 else (True, False):
            start = time.perf_counter()
            load_teacher(run, device="cpu", trust_remote_code=trust)
            times[trust].append(time.perf_counter() - start)
    return {"safe_s": statistics.median(times[False]), "trusted_s": statistics.median(times[True])}


def same_teacher(run: Path, n_obs: int = 256, seed: int = 0) -> dict[str, Any]:
    """
    :param run: a run folder
    :param n_obs: observations sampled from the teacher's observation space (scaled into a plausible range)
    :param seed: their seed
    :return: whether the safe and the trusted load agree (fingerprint, spaces, config, actions)
    """
    safe = load_teacher(run, device="cpu")
    trusted = load_teacher(run, device="cpu", trust_remote_code=True)
    space = safe.observation_space
    space.seed(seed)
    obs = np.stack([space.sample() for _ in range(n_obs)])
    if np.issubdtype(obs.dtype, np.floating):
        obs = np.clip(obs, -10.0, 10.0)  # unbounded Box: samples of huge magnitude say nothing
    actions_safe, _ = safe.predict(obs, deterministic=True)
    actions_trusted, _ = trusted.predict(obs, deterministic=True)
    return {
        "same_fingerprint": safe.fingerprint == trusted.fingerprint,
        "same_spaces": safe.observation_space == trusted.observation_space and safe.action_space == trusted.action_space,
        "same_config": (safe.config, safe.env_kwargs, safe.env_id, safe.algo)
        == (trusted.config, trusted.env_kwargs, trusted.env_id, trusted.algo),
        "same_actions": bool(np.array_equal(actions_safe, actions_trusted)),
        "n_obs": n_obs,
        "env_id": safe.env_id,
        "vecnormalize": safe.obs_normalizer is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", type=Path, help="rl-zoo3 log folders")
    parser.add_argument("--repeats", type=int, default=7, help="timed loads each way (default 7)")
    parser.add_argument("--output", type=Path, default=None, help="append one JSON line per agent")
    args = parser.parse_args()
    th.set_num_threads(1)
    rows = []
    print(f"{'agent':58} {'safe ms':>8} {'SB3 ms':>8} {'ratio':>6}  same (fingerprint, spaces, config, actions)")
    for run in run_folders(args.roots):
        row: dict[str, Any] = {"run": str(run)}
        try:
            row.update(load_times(run, args.repeats))
            row.update(same_teacher(run))
        except TeacherError as error:
            row["error"] = f"{type(error).__name__}: {error}"
            print(f"{str(run)[-58:]:58} {row['error'][:120]}")
            rows.append(row)
            continue
        row["ratio"] = row["safe_s"] / row["trusted_s"]
        same = [row[key] for key in ("same_fingerprint", "same_spaces", "same_config", "same_actions")]
        print(f"{str(run)[-58:]:58} {row['safe_s'] * 1e3:8.1f} {row['trusted_s'] * 1e3:8.1f} {row['ratio']:6.2f}  {same}")
        rows.append(row)
        if args.output is not None:
            with open(args.output, "a") as file:
                file.write(json.dumps(row) + "\n")
    loaded = [row for row in rows if "error" not in row]
    agree = [
        row for row in loaded if all(row[key] for key in ("same_fingerprint", "same_spaces", "same_config", "same_actions"))
    ]
    if loaded:
        ratios = [row["ratio"] for row in loaded]
        print(
            f"{len(loaded)}/{len(rows)} agents load safely, {len(agree)} identical to SB3's reader; safe / SB3 load time: "
            f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}"
        )


if __name__ == "__main__":
    main()
