"""Train the teachers bundled with ``sb3_distill`` using rl-zoo3 and its own hyperparameters.

Each teacher is trained by running ``python -m rl_zoo3.train`` in a subprocess, with the zoo's tuned
hyperparameters (``rl_zoo3/hyperparams/{algo}.yml``), in a temporary log folder outside the repository.
The full model saved by rl-zoo3 is then evaluated with :func:`stable_baselines3.common.evaluation.evaluate_policy`
on a fresh, ``Monitor``-wrapped ``gymnasium.make(env_id)`` environment (deterministic actions), and a compact copy
is written to the output folder using the rl-zoo3 log-folder layout::

    {out}/{algo}/{env_id}_1/{env_id}.zip                  # SB3 zip without any ``*optimizer*.pth`` entry
    {out}/{algo}/{env_id}_1/{env_id}/config.yml           # copied from the rl-zoo3 run
    {out}/{algo}/{env_id}_1/{env_id}/vecnormalize.pkl     # only if the run used ``normalize``
    {out}/teachers.json                                   # evaluation results of every bundled teacher

``teachers.json`` is updated in place: entries for the teachers trained in this invocation replace older ones,
the others are kept.

Weak teachers (``--weak``, to measure whether a student outgrows its teacher) are trained the same way with
rl-zoo3 keeping checkpoints (``--save-freq``); every checkpoint is evaluated and the one whose teacher-normalized
score ``(G - G_random) / (G_strong - G_random)`` is closest to the middle of the band (default 0.2-0.5) is bundled
under ``{out}/weak/{algo}/{env_id}_1/`` (the spec ``"dqn/CartPole-v1@weak"`` loads it). ``G_strong`` is the bundled
strong teacher's return in ``teachers.json``; ``G_random`` is measured on the same evaluation env and seed.

Teachers of shifted dynamics (``--dynamics PARAM=FACTOR ...``, the experts of
``sb3_distill.robustness.ExpertTeacher``) are trained the same way on the env wrapped in
``sb3_distill.robustness.ShiftDynamics`` (rl-zoo3's ``env_wrapper`` hyperparameter, before the zoo's own wrappers: the
run's ``config.yml`` records it, so the teacher's ``make_env()`` rebuilds its shifted env), evaluated there, and
bundled under ``{out}/dynamics/{PARAM=FACTOR,...}/{algo}/{env_id}_1/`` (load it with ``load_teacher(that folder)``).

Examples::

    python scripts/train_teachers.py                                  # all default teachers, seed 0
    python scripts/train_teachers.py --only dqn/LunarLander-v3 --seed 1 --force
    python scripts/train_teachers.py --only sac/Pendulum-v1 --n-timesteps 30000 --force
    python scripts/train_teachers.py --weak --only dqn/CartPole-v1 -n 20000 --checkpoints 1000
    python scripts/train_teachers.py --only dqn/CartPole-v1 --dynamics force_mag=0.25 --out runs/teachers
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

#: Teachers trained by default, as ``(algo, env_id)``.
DEFAULT_TEACHERS: list[tuple[str, str]] = [
    ("dqn", "CartPole-v1"),
    ("dqn", "Acrobot-v1"),
    ("dqn", "MountainCar-v0"),
    ("dqn", "LunarLander-v3"),
    ("sac", "Pendulum-v1"),
]

#: Minimum mean return for a teacher to be considered good.
TARGET_RETURNS: dict[str, float] = {
    "CartPole-v1": 500.0,
    "Acrobot-v1": -100.0,
    "MountainCar-v0": -120.0,
    "LunarLander-v3": 200.0,
    "Pendulum-v1": -200.0,
}

#: Attribute of ``model.policy`` holding the network used to act (its trainable parameters are counted).
ACTING_NETWORK: dict[str, str] = {
    "dqn": "q_net",
    "qrdqn": "quantile_net",
    "sac": "actor",
    "td3": "actor",
    "tqc": "actor",
    "ddpg": "actor",
}

#: Zip entries matching this pattern (optimizer states) are dropped from the bundled zip.
OPTIMIZER_ENTRY_PATTERN = "*optimizer*.pth"

#: Band of teacher-normalized scores a weak teacher is picked from (issue: "about 0.2-0.5 of the strong teacher").
DEFAULT_WEAK_BAND = (0.2, 0.5)

#: Sub-folder of ``--out`` holding the weak teachers (same rl-zoo3 layout below it).
WEAK_SUBDIR = "weak"

#: Sub-folder of ``--out`` holding the teachers of shifted dynamics, one folder per shift below it.
DYNAMICS_SUBDIR = "dynamics"

#: The wrapper that shifts a teacher's dynamics (rl-zoo3's ``env_wrapper`` entry).
SHIFT_WRAPPER = "sb3_distill.robustness.wrappers.ShiftDynamics"

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sb3_distill" / "teachers" / "bundled"


def parse_teacher(spec: str) -> tuple[str, str]:
    """
    Parse an ``algo/env_id`` teacher specification.

    :param spec: Teacher specification, e.g. ``dqn/CartPole-v1``.
    :return: ``(algo, env_id)`` with ``algo`` lower-cased.
    :raises argparse.ArgumentTypeError: If the specification is malformed or the algorithm is unsupported.
    """
    algo, sep, env_id = spec.partition("/")
    algo = algo.strip().lower()
    env_id = env_id.strip()
    if not sep or not algo or not env_id:
        raise argparse.ArgumentTypeError(f"expected 'algo/env_id' (e.g. dqn/CartPole-v1), got {spec!r}")
    if algo not in ACTING_NETWORK:
        raise argparse.ArgumentTypeError(f"unsupported algo {algo!r}, choose from {sorted(ACTING_NETWORK)}")
    return algo, env_id


def n_episodes_type(value: str) -> int:
    """
    Argparse type for ``--n-eval-episodes`` (an integer >= 10).

    :param value: Command-line value.
    :return: The number of evaluation episodes.
    :raises argparse.ArgumentTypeError: If the value is not an integer >= 10.
    """
    n = int(value)
    if n < 10:
        raise argparse.ArgumentTypeError(f"--n-eval-episodes must be >= 10, got {n}")
    return n


def weak_band_type(value: str) -> tuple[float, float]:
    """
    Argparse type for ``--weak``: two normalized scores ``LO,HI`` with 0 <= LO < HI <= 1.

    :param value: Command-line value, e.g. ``0.2,0.5``.
    :return: ``(lo, hi)``.
    :raises argparse.ArgumentTypeError: If the value is not such a pair.
    """
    try:
        lo, hi = (float(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weak takes LO,HI (e.g. 0.2,0.5), got {value!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise argparse.ArgumentTypeError(f"--weak needs 0 <= LO < HI <= 1, got {value!r}")
    return lo, hi


def dynamics_type(value: str) -> tuple[str, float]:
    """
    Argparse type for ``--dynamics``: ``PARAM=FACTOR`` with a factor > 0.

    :param value: Command-line value, e.g. ``force_mag=0.25``.
    :return: ``(param, factor)``.
    :raises argparse.ArgumentTypeError: If the value is not such a pair.
    """
    parameter, sep, factor = value.partition("=")
    try:
        number = float(factor)
    except ValueError:
        number = float("nan")
    if not sep or not parameter or not np.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(
            f"--dynamics takes PARAM=FACTOR with a factor > 0 (e.g. force_mag=0.25), got {value!r}"
        )
    return parameter, number


def dynamics_tag(dynamics: dict[str, float]) -> str:
    """
    :param dynamics: ``{parameter: factor}``
    :return: the folder name of its teachers, e.g. ``force_mag=0.25``
    """
    return ",".join(f"{parameter}={factor:g}" for parameter, factor in sorted(dynamics.items()))


def zoo_env_wrapper(algo: str, env_id: str) -> list[Any]:
    """
    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :return: the zoo's ``env_wrapper`` entries for this teacher, as a list (empty if none)
    """
    import rl_zoo3

    with (Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").open() as f:
        entry = (yaml.safe_load(f) or {}).get(env_id) or {}
    wrappers = entry.get("env_wrapper")
    return [] if wrappers is None else list(wrappers) if isinstance(wrappers, list) else [wrappers]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """
    Parse the command line.

    :param argv: Arguments (defaults to ``sys.argv[1:]``).
    :return: Parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        type=parse_teacher,
        action="append",
        default=None,
        metavar="ALGO/ENV",
        help="Train only this teacher (repeatable). Default: " + ", ".join(f"{a}/{e}" for a, e in DEFAULT_TEACHERS),
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed passed to rl-zoo3 (default: 0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Output (zoo root) folder (default: {DEFAULT_OUT})")
    parser.add_argument("--n-eval-episodes", type=n_episodes_type, default=20, help="Evaluation episodes, >= 10 (default: 20)")
    parser.add_argument("--force", action="store_true", help="Overwrite existing teacher folders")
    parser.add_argument(
        "-n",
        "--n-timesteps",
        type=int,
        default=-1,
        help="Override the zoo's n_timesteps (rl-zoo3 '-n'); recorded in teachers.json (default: zoo value)",
    )
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads for training and evaluation (default: 1)")
    parser.add_argument("--eval-seed", type=int, default=12345, help="Seed of the evaluation environment (default: 12345)")
    parser.add_argument(
        "--log-root",
        type=Path,
        default=None,
        help="Where rl-zoo3 writes its logs (default: a fresh temporary directory, deleted unless --keep-logs)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="Keep rl-zoo3's log folder after the run")
    parser.add_argument(
        "--checkpoints",
        type=int,
        default=-1,
        metavar="FREQ",
        help="Keep a checkpoint every FREQ env steps (rl-zoo3 '--save-freq'; default with --weak: n_timesteps / 20)",
    )
    parser.add_argument(
        "--from-run",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="With --weak and one --only teacher: pick from the checkpoints of this rl-zoo3 run folder instead of training",
    )
    parser.add_argument(
        "--weak",
        type=weak_band_type,
        nargs="?",
        const=DEFAULT_WEAK_BAND,
        default=None,
        metavar="LO,HI",
        help="Bundle a weak teacher: the checkpoint whose normalized score is closest to the middle of LO,HI "
        f"(default {DEFAULT_WEAK_BAND[0]:g},{DEFAULT_WEAK_BAND[1]:g}) under OUT/weak/",
    )
    parser.add_argument(
        "--dynamics",
        type=dynamics_type,
        nargs="+",
        default=None,
        metavar="PARAM=FACTOR",
        help="Train a teacher of shifted dynamics (sb3_distill.robustness.ShiftDynamics: e.g. force_mag=0.25 for "
        f"CartPole's push force × 0.25) under OUT/{DYNAMICS_SUBDIR}/PARAM=FACTOR/",
    )
    args = parser.parse_args(argv)
    args.dynamics = dict(args.dynamics) if args.dynamics else None
    return args


def teacher_dir(out: Path, algo: str, env_id: str) -> Path:
    """
    Folder of one bundled teacher (rl-zoo3 layout, experiment id 1).

    :param out: Output (zoo root) folder.
    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :return: ``{out}/{algo}/{env_id}_1``.
    """
    return out / algo / f"{env_id}_1"


def train_with_zoo(
    algo: str,
    env_id: str,
    seed: int,
    log_folder: Path,
    n_timesteps: int,
    num_threads: int,
    save_freq: int = -1,
    dynamics: dict[str, float] | None = None,
) -> Path:
    """
    Train one agent with ``python -m rl_zoo3.train`` and the zoo's hyperparameters.

    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :param seed: Random seed.
    :param log_folder: Empty rl-zoo3 log folder (``-f``) for this run (so that the run id is 1).
    :param n_timesteps: Override of the number of timesteps (``-n``), or -1 for the zoo's value.
    :param num_threads: Number of torch threads.
    :param save_freq: Keep a checkpoint ``rl_model_{steps}_steps.zip`` every ``save_freq`` steps (-1: none).
    :param dynamics: ``{parameter: factor}`` of a shifted env (:data:`SHIFT_WRAPPER`, before the zoo's wrappers)
    :return: The rl-zoo3 run folder, ``{log_folder}/{algo}/{env_id}_1``.
    :raises RuntimeError: If training fails.
    """
    cmd = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        algo,
        "--env",
        env_id,
        "-f",
        str(log_folder),
        "--seed",
        str(seed),
        "--eval-freq",
        "-1",
        "--device",
        "cpu",
        "--num-threads",
        str(num_threads),
        "-n",
        str(n_timesteps),
        "--save-freq",
        str(save_freq),
    ]
    if dynamics:
        wrappers = [{SHIFT_WRAPPER: {"shifts": dict(dynamics)}}, *zoo_env_wrapper(algo, env_id)]
        cmd += ["--hyperparams", f"env_wrapper:{wrappers!r}"]
    log_folder.mkdir(parents=True, exist_ok=True)
    log_file = log_folder / "train.log"
    print(f"[{algo}/{env_id}] $ {' '.join(cmd[1:])}\n[{algo}/{env_id}] rl-zoo3 output -> {log_file}", flush=True)
    start = time.time()
    with log_file.open("w") as f:
        result = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text().splitlines()[-30:])
        raise RuntimeError(f"rl-zoo3 training of {algo}/{env_id} failed (exit {result.returncode}):\n{tail}")
    run_dir = log_folder / algo / f"{env_id}_1"
    if not (run_dir / f"{env_id}.zip").is_file():
        raise RuntimeError(f"rl-zoo3 did not write {run_dir / f'{env_id}.zip'}")
    print(f"[{algo}/{env_id}] trained in {time.time() - start:.0f} s", flush=True)
    return run_dir


def configured_timesteps(run_dir: Path, env_id: str, n_timesteps: int) -> int:
    """
    Training budget of a run: the ``-n`` override if given, else ``n_timesteps`` from the run's ``config.yml``.

    :param run_dir: rl-zoo3 run folder.
    :param env_id: Gymnasium environment id.
    :param n_timesteps: Value of ``-n`` (-1 if not overridden).
    :return: Number of timesteps the agent was trained for.
    """
    if n_timesteps > 0:
        return n_timesteps
    with (run_dir / env_id / "config.yml").open() as f:
        # rl-zoo3 dumps an OrderedDict (python tags); this file was just written by our own run.
        config = dict(yaml.load(f, Loader=yaml.UnsafeLoader))
    return int(float(config["n_timesteps"]))


def make_eval_env(env_id: str, run_dir: Path, eval_seed: int, dynamics: dict[str, float] | None = None) -> VecEnv:
    """
    Fresh ``Monitor``-wrapped evaluation environment (with the run's frozen ``VecNormalize`` stats if any).

    :param env_id: Gymnasium environment id.
    :param run_dir: rl-zoo3 run folder.
    :param eval_seed: Seed of the evaluation environment.
    :param dynamics: ``{parameter: factor}`` of a shifted env, or ``None``
    :return: A single-environment ``VecEnv``.
    """

    def make() -> gym.Env:
        env = gym.make(env_id)
        if dynamics:
            from sb3_distill.robustness import ShiftDynamics

            env = ShiftDynamics(env, dynamics)
        return Monitor(env)

    env: VecEnv = DummyVecEnv([make])
    vecnormalize_path = run_dir / env_id / "vecnormalize.pkl"
    if vecnormalize_path.is_file():
        normalized = VecNormalize.load(str(vecnormalize_path), env)
        normalized.training = False
        normalized.norm_reward = False
        env = normalized
    env.seed(eval_seed)
    return env


def count_trainable_params(model: BaseAlgorithm, algo: str) -> int:
    """
    Count the trainable parameters of the policy's acting network (``q_net`` for DQN, ``actor`` for SAC).

    :param model: Loaded model.
    :param algo: Algorithm name.
    :return: Number of trainable parameters.
    """
    network: th.nn.Module = getattr(model.policy, ACTING_NETWORK[algo])
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def write_compact_zip(src: Path, dst: Path) -> list[str]:
    """
    Copy an SB3 zip without its optimizer states, using zip compression.

    :param src: Zip saved by rl-zoo3.
    :param dst: Destination zip.
    :return: Names of the dropped entries.
    """
    dropped = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            if fnmatch.fnmatch(Path(info.filename).name, OPTIMIZER_ENTRY_PATTERN):
                dropped.append(info.filename)
                continue
            zout.writestr(info.filename, zin.read(info.filename))
    return dropped


def bundle_teacher(run_dir: Path, out: Path, algo: str, env_id: str, model_zip: Path | None = None) -> Path:
    """
    Write the compact teacher (zip, ``config.yml``, ``vecnormalize.pkl`` if any) into the output folder.

    Any existing folder for this teacher is replaced (the caller has checked ``--force``).

    :param run_dir: rl-zoo3 run folder.
    :param out: Output (zoo root) folder.
    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :param model_zip: The model to bundle (a checkpoint); default: the run's final ``{env_id}.zip``.
    :return: Path of the bundled zip.
    """
    dest = teacher_dir(out, algo, env_id)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / env_id).mkdir(parents=True)
    zip_path = dest / f"{env_id}.zip"
    dropped = write_compact_zip(model_zip or run_dir / f"{env_id}.zip", zip_path)
    shutil.copy2(run_dir / env_id / "config.yml", dest / env_id / "config.yml")
    vecnormalize_path = run_dir / env_id / "vecnormalize.pkl"
    if vecnormalize_path.is_file():
        shutil.copy2(vecnormalize_path, dest / env_id / "vecnormalize.pkl")
    print(f"[{algo}/{env_id}] wrote {zip_path} ({zip_path.stat().st_size / 1024:.0f} KiB, dropped {dropped})", flush=True)
    return zip_path


def evaluate(model_zip: Path, algo: str, env_id: str, run_dir: Path, args: argparse.Namespace) -> list[float]:
    """
    Deterministic returns of a saved model on a fresh evaluation env.

    :param model_zip: The model's zip (final model or checkpoint).
    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :param run_dir: rl-zoo3 run folder (for its ``vecnormalize.pkl``).
    :param args: Parsed command-line arguments.
    :return: One return per episode.
    """
    model = ALGOS[algo].load(model_zip, device="cpu")
    eval_env = make_eval_env(env_id, run_dir, args.eval_seed, getattr(args, "dynamics", None))
    rewards, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=args.n_eval_episodes, deterministic=True, return_episode_rewards=True
    )
    eval_env.close()
    return [float(r) for r in rewards]  # type: ignore[union-attr]


def random_return(env_id: str, args: argparse.Namespace) -> float:
    """
    Mean return of a uniformly random policy on the evaluation env (the zero of normalized scores).

    :param env_id: Gymnasium environment id.
    :param args: Parsed command-line arguments.
    :return: The mean over ``args.n_eval_episodes`` episodes.
    """
    env = Monitor(gym.make(env_id))
    env.reset(seed=args.eval_seed)
    env.action_space.seed(args.eval_seed)
    returns = []
    for _ in range(args.n_eval_episodes):
        env.reset()
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        returns.append(env.get_episode_rewards()[-1])
    env.close()
    return float(np.mean(returns))


def strong_return(out: Path, algo: str, env_id: str) -> float:
    """
    The bundled strong teacher's mean return, from ``{out}/teachers.json``.

    :param out: Output (zoo root) folder.
    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :return: Its ``mean_return``.
    :raises RuntimeError: If there is no strong teacher for ``algo/env_id`` in the index.
    """
    index_path = out / "teachers.json"
    entries = json.loads(index_path.read_text()) if index_path.is_file() else []
    for entry in entries:
        if (entry.get("variant", "strong"), entry["algo"], entry["env_id"]) == ("strong", algo, env_id):
            return float(entry["mean_return"])
    raise RuntimeError(
        f"--weak measures scores against the strong {algo}/{env_id} teacher in {index_path}, and there is none: "
        f"train it first (python scripts/train_teachers.py --only {algo}/{env_id})."
    )


def checkpoint_steps(path: Path) -> int:
    """
    :param path: An rl-zoo3 checkpoint, ``rl_model_{steps}_steps.zip``.
    :return: Its number of env steps.
    """
    return int(path.stem.split("_")[-2])


def pick_weak(scores: dict[Path, float], band: tuple[float, float]) -> Path:
    """
    The model whose normalized score is closest to the middle of ``band`` (the earliest one on a tie).

    :param scores: Normalized score of each candidate zip.
    :param band: ``(lo, hi)`` normalized scores.
    :return: The chosen zip.
    """
    middle = (band[0] + band[1]) / 2
    return min(scores, key=lambda path: (abs(scores[path] - middle), checkpoint_steps(path)))


def train_teacher(algo: str, env_id: str, args: argparse.Namespace, log_root: Path) -> dict[str, Any]:
    """
    Train, evaluate and bundle one teacher (with ``--weak``: the checkpoint closest to the weak band).

    :param algo: Algorithm name.
    :param env_id: Gymnasium environment id.
    :param args: Parsed command-line arguments.
    :param log_root: Folder holding the rl-zoo3 log folders.
    :return: The teacher's ``teachers.json`` entry.
    """
    # Checked before training: a weak teacher is measured against the strong one.
    reference = strong_return(args.out, algo, env_id) if args.weak else None
    log_root.mkdir(parents=True, exist_ok=True)
    log_folder = Path(tempfile.mkdtemp(prefix=f"{algo}_{env_id}_seed{args.seed}_", dir=log_root))
    save_freq = args.checkpoints
    if args.weak and save_freq <= 0:
        save_freq = max(args.n_timesteps // 20, 1) if args.n_timesteps > 0 else -1
    if args.from_run is not None:
        run_dir = args.from_run.resolve()  # an earlier rl-zoo3 run (e.g. stopped early): pick from its checkpoints
    else:
        run_dir = train_with_zoo(
            algo, env_id, args.seed, log_folder, args.n_timesteps, args.num_threads, save_freq, args.dynamics
        )
    final_zip = run_dir / f"{env_id}.zip"
    if not final_zip.is_file():  # a run stopped before its end has only checkpoints
        final_zip = max(run_dir.glob("rl_model_*_steps.zip"), key=checkpoint_steps)
    timesteps = configured_timesteps(run_dir, env_id, args.n_timesteps)
    entry: dict[str, Any] = {"algo": algo, "env_id": env_id}
    if args.weak:
        if (run_dir / env_id / "vecnormalize.pkl").is_file():
            raise RuntimeError(f"--weak: {algo}/{env_id} uses VecNormalize, whose statistics are not checkpointed.")
        g_random = random_return(env_id, args)
        checkpoints = sorted(run_dir.glob("rl_model_*_steps.zip"), key=checkpoint_steps)
        if not checkpoints:
            raise RuntimeError(f"--weak: rl-zoo3 kept no checkpoint in {run_dir}; pass --checkpoints FREQ.")
        returns = {path: evaluate(path, algo, env_id, run_dir, args) for path in checkpoints}
        scores = {path: (np.mean(r) - g_random) / (reference - g_random) for path, r in returns.items()}  # type: ignore[operator]
        for path in checkpoints:
            print(f"[{algo}/{env_id}] {path.name}: {np.mean(returns[path]):.1f} (normalized {scores[path]:.2f})")
        chosen = pick_weak(scores, args.weak)
        if not args.weak[0] <= scores[chosen] <= args.weak[1]:
            # Nothing is written: a teacher outside the band would not be the weak teacher its id promises.
            raise RuntimeError(
                f"--weak: no checkpoint of {algo}/{env_id} scores within {args.weak} (closest: {chosen.name}, "
                f"{scores[chosen]:.2f}); try another --seed, denser --checkpoints or another -n."
            )
        rewards, timesteps = returns[chosen], checkpoint_steps(chosen)
        zip_path = bundle_teacher(run_dir, args.out / WEAK_SUBDIR, algo, env_id, model_zip=chosen)
        entry.update(variant="weak", path=zip_path.relative_to(args.out).as_posix())
        extra = {
            "normalized_score": float(scores[chosen]),
            "random_return": g_random,
            "strong_return": reference,
            "weak_band": list(args.weak),
        }
    elif args.dynamics:
        rewards = evaluate(final_zip, algo, env_id, run_dir, args)
        zip_path = bundle_teacher(run_dir, output_root(args), algo, env_id)
        entry.update(variant=f"dynamics {dynamics_tag(args.dynamics)}", path=zip_path.relative_to(args.out).as_posix())
        extra = {"dynamics": dict(args.dynamics)}
    else:
        rewards = evaluate(final_zip, algo, env_id, run_dir, args)
        zip_path = bundle_teacher(run_dir, args.out, algo, env_id)
        entry.update(path=zip_path.relative_to(args.out).as_posix())
        extra = {}
    entry.update(
        mean_return=float(np.mean(rewards)),
        std_return=float(np.std(rewards)),
        n_eval_episodes=args.n_eval_episodes,
        n_timesteps=timesteps,
        seed=args.seed,
        params=count_trainable_params(ALGOS[algo].load(final_zip, device="cpu"), algo),
        **extra,
    )
    print(f"[{algo}/{env_id}] mean return {entry['mean_return']:.2f} +/- {entry['std_return']:.2f}", flush=True)
    return entry


def output_root(args: argparse.Namespace) -> Path:
    """
    :param args: Parsed command-line arguments.
    :return: The zoo root the teachers of this invocation go to: ``--out``, its ``weak/`` or its ``dynamics/TAG/``.
    """
    if args.weak:
        return args.out / WEAK_SUBDIR
    if args.dynamics:
        return args.out / DYNAMICS_SUBDIR / dynamics_tag(args.dynamics)
    return args.out


def index_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """
    :param entry: A ``teachers.json`` entry.
    :return: ``(variant, algo, env_id)``; entries without a variant are the strong teachers.
    """
    return entry.get("variant", "strong"), entry["algo"], entry["env_id"]


def update_index(out: Path, new_entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """
    Merge entries into ``{out}/teachers.json`` (replacing entries of the same teacher) and write it.

    :param out: Output (zoo root) folder.
    :param new_entries: Entries of freshly trained teachers.
    :return: All entries, in default-teacher order.
    """
    index_path = out / "teachers.json"
    entries: list[dict[str, Any]] = json.loads(index_path.read_text()) if index_path.is_file() else []
    keys = {index_key(e) for e in new_entries}
    entries = [e for e in entries if index_key(e) not in keys] + new_entries

    def order(entry: dict[str, Any]) -> tuple[bool, int, str, str]:
        variant, algo, env_id = index_key(entry)
        position = DEFAULT_TEACHERS.index((algo, env_id)) if (algo, env_id) in DEFAULT_TEACHERS else len(DEFAULT_TEACHERS)
        return variant != "strong", position, algo, env_id

    entries.sort(key=order)
    out.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def meets_target(entry: dict[str, Any]) -> bool | None:
    """
    :param entry: A ``teachers.json`` entry.
    :return: Whether a strong teacher reaches its target return / a weak one lies in its band (None: no target).
    """
    if index_key(entry)[0] == "weak":
        low, high = entry["weak_band"]
        return bool(low <= entry["normalized_score"] <= high)
    if "dynamics" in entry:  # the target return is the nominal env's: a shifted env may not allow it
        return None
    target = TARGET_RETURNS.get(entry["env_id"])
    return None if target is None else bool(entry["mean_return"] >= target)


def markdown_table(entries: list[dict[str, Any]]) -> str:
    """
    Format ``teachers.json`` entries as a markdown table.

    :param entries: ``teachers.json`` entries.
    :return: The table.
    """
    lines = [
        "| algo | env | variant | mean return | std | episodes | params | seed | timesteps | target | ok |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for e in entries:
        target = TARGET_RETURNS.get(e["env_id"]) if index_key(e)[0] == "strong" else None
        met = meets_target(e)
        ok = "?" if met is None else ("yes" if met else "NO")
        lines.append(
            f"| {e['algo']} | {e['env_id']} | {index_key(e)[0]} | {e['mean_return']:.2f} | {e['std_return']:.2f} "
            f"| {e['n_eval_episodes']} | {e['params']} | {e['seed']} | {e['n_timesteps']} "
            f"| {'-' if target is None else f'{target:g}'} | {ok} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """
    Entry point.

    :param argv: Command-line arguments (defaults to ``sys.argv[1:]``).
    :return: Exit code (1 if a trained teacher misses its target return, 0 otherwise).
    """
    args = parse_args(argv)
    args.out = args.out.resolve()
    teachers: list[tuple[str, str]] = list(dict.fromkeys(args.only or DEFAULT_TEACHERS))
    for _, env_id in teachers:
        if env_id not in gym.envs.registry:
            print(f"error: unknown environment {env_id!r}", file=sys.stderr)
            return 2
    if args.from_run is not None and (not args.weak or len(teachers) != 1):
        print("error: --from-run needs --weak and exactly one --only ALGO/ENV", file=sys.stderr)
        return 2
    if args.weak and args.dynamics:
        print("error: --weak and --dynamics do not go together: train the shifted teacher, then pick", file=sys.stderr)
        return 2
    if args.dynamics:
        from sb3_distill.robustness import check_dynamics

        for _, env_id in teachers:
            probe = gym.make(env_id)
            try:
                for parameter in args.dynamics:
                    check_dynamics(probe, parameter)
            except ValueError as error:
                print(f"error: --dynamics on {env_id}: {error}", file=sys.stderr)
                return 2
            finally:
                probe.close()
    root = output_root(args)
    existing = [teacher_dir(root, a, e) for a, e in teachers if teacher_dir(root, a, e).exists()]
    if existing and not args.force:
        print(
            "error: refusing to overwrite existing teacher folder(s):\n  "
            + "\n  ".join(str(p) for p in existing)
            + "\nRe-run with --force to replace them.",
            file=sys.stderr,
        )
        return 2
    th.set_num_threads(args.num_threads)

    log_root = args.log_root if args.log_root is not None else Path(tempfile.mkdtemp(prefix="sb3_distill_teachers_"))
    log_root = log_root.resolve()
    if log_root.is_relative_to(args.out):
        print("error: --log-root must not be inside --out", file=sys.stderr)
        return 2
    print(f"rl-zoo3 logs: {log_root}", flush=True)
    new_entries: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    try:
        for algo, env_id in teachers:
            new_entries.append(train_teacher(algo, env_id, args, log_root))
            entries = update_index(args.out, [new_entries[-1]])
    finally:
        if args.keep_logs or args.log_root is not None:
            print(f"rl-zoo3 logs kept in {log_root}", flush=True)
        else:
            shutil.rmtree(log_root, ignore_errors=True)

    print(f"\nWrote {args.out / 'teachers.json'}\n")
    print(markdown_table(entries))
    missed = [e for e in new_entries if meets_target(e) is False]
    for e in missed:
        target = f"band {e['weak_band']}" if args.weak else f"{TARGET_RETURNS[e['env_id']]:g}"
        print(
            f"warning: {e['algo']}/{e['env_id']} (seed {e['seed']}) misses its target {target}; "
            "try another --seed (or, with --weak, other --checkpoints / -n)",
            file=sys.stderr,
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
