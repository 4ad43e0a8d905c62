"""
The benchmark behind docs/benchmarks.md: distilled students vs their teachers vs DQN from scratch, in one run.

For CartPole-v1, Acrobot-v1, MountainCar-v0 and LunarLander-v3, with the bundled DQN teachers (256×256; or those of
``--zoo-dir``), on the same machine and as ratios:

* the teacher: return over 30 episodes, parameters, ``predict()`` / network / exported latency for one observation;
* SB3's DQN from scratch with rl-zoo3's hyperparameters for the env (read by rl-zoo3's own ``ExperimentManager`` from
  its installed ``hyperparams/dqn.yml``) — the baseline a user would run;
* every DistillDQN recipe and PolicyDistill, with a ``net_arch=[32, 32]`` student (about 2% of the teacher).

Scores are teacher-normalized, (G − G_random) / (G_teacher − G_random), measured by a callback every few hundred
to few thousand env steps (env steps include the teacher's own data-collection steps). Every run is a fresh process
(``spawn``, one run per process), at most ``--jobs`` at once, one torch thread each; peak RSS is per run.

::

    python scripts/benchmark.py --out runs/bench --quick            # < 10 minutes on 2 cores
    python scripts/benchmark.py --out runs/bench-full --jobs 2      # the docs/benchmarks.md run (about an hour)

Writes ``results.json`` (one row per env × method × seed, a ``summary`` per env × method, the teachers, the
gradient-step profile and the memory probes), ``benchmarks.md`` (tables) and ``benchmark.png`` (curves).
"""

from __future__ import annotations

import argparse
import hashlib
import contextlib
import cProfile
import io
import json
import math
import multiprocessing
import os
import pstats
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ENVS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
RECIPES: tuple[str, ...] = ("qdagger", "policy_distillation", "seed")
METHODS: tuple[str, ...] = ("dqn", *(f"distill_dqn:{recipe}" for recipe in RECIPES), "policy_distill")
METHOD_LABELS = {
    "dqn": "DQN from scratch (zoo, 256×256)",
    "distill_dqn:qdagger": "DistillDQN qdagger",
    "distill_dqn:policy_distillation": "DistillDQN policy_distillation (default)",
    "distill_dqn:seed": "DistillDQN seed",
    "policy_distill": "PolicyDistill",
}
STUDENT_NET_ARCH = [32, 32]
#: Env steps of every student run (teacher-phase steps included), full run and ``--quick``.
STUDENT_BUDGETS = {
    "full": {"CartPole-v1": 5_000, "Acrobot-v1": 8_000, "MountainCar-v0": 15_000, "LunarLander-v3": 20_000},
    "quick": {"CartPole-v1": 2_500, "Acrobot-v1": 3_000, "MountainCar-v0": 4_000, "LunarLander-v3": 5_000},
}
#: DQN from scratch: the zoo's own n_timesteps in a full run; capped in ``--quick``.
QUICK_DQN_CAP = 10_000
TEACHER_EPISODES = 30
LEVELS = (0.9, 1.0)


# ---------------------------------------------------------------------------------------------- configuration
def zoo_dqn_hyperparams(env_id: str) -> tuple[dict[str, Any], int]:
    """
    rl-zoo3's DQN hyperparameters for ``env_id``, read and preprocessed by rl-zoo3's own ``ExperimentManager``.

    :param env_id: gymnasium id
    :return: keyword arguments of ``DQN`` (``policy`` included) and the zoo's ``n_timesteps``
    """
    from rl_zoo3.exp_manager import ExperimentManager

    with tempfile.TemporaryDirectory() as log_folder, contextlib.redirect_stdout(io.StringIO()):
        manager = ExperimentManager(argparse.Namespace(), "dqn", env_id, log_folder, verbose=0)
        hyperparams, _ = manager.read_hyperparameters()
        hyperparams, *_ = manager._preprocess_hyperparams(hyperparams)
    if manager.normalize:
        raise ValueError(f"The zoo normalizes {env_id}: this benchmark does not handle VecNormalize baselines.")
    return hyperparams, int(manager.n_timesteps)


def student_hyperparams(env_id: str) -> dict[str, Any]:
    """
    Settings shared by every student of ``env_id`` (DistillDQN recipes; PolicyDistill takes the relevant ones).

    The zoo's buffer size, batch size, discount and target-update interval; one gradient step per env step from
    step 100; a constant ε (the zoo's final ε): the teacher, not ε-greedy search, tells the student where to go.

    :param env_id: gymnasium id
    :return: keyword arguments of ``DistillDQN`` (without ``teacher`` and ``recipe``)
    """
    zoo, _ = zoo_dqn_hyperparams(env_id)
    return dict(
        policy="MlpPolicy",
        learning_rate=1e-3,
        buffer_size=zoo["buffer_size"],
        learning_starts=100,
        batch_size=zoo["batch_size"],
        gamma=zoo["gamma"],
        train_freq=1,
        gradient_steps=1,
        target_update_interval=zoo["target_update_interval"],
        exploration_initial_eps=zoo["exploration_final_eps"],
        exploration_final_eps=zoo["exploration_final_eps"],
        policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)),
    )


def eval_grid(budget: int) -> list[int]:
    """
    Env steps at which every run of an env is evaluated: every 500 up to 5,000, every 2,500 up to 20,000, then
    every 5,000 (and the budget itself), so that the curves of all seeds and methods share their points.

    :param budget: the run's env steps
    :return: sorted steps
    """
    grid = [*range(500, 5_001, 500), *range(7_500, 20_001, 2_500), *range(25_000, budget + 1, 5_000)]
    return sorted({step for step in grid if step <= budget} | {budget})


def policy_distill_available() -> tuple[bool, str]:
    """
    :return: whether ``from sb3_distill import PolicyDistill`` works, and why not
    """
    try:
        from sb3_distill import PolicyDistill  # noqa: F401
    except Exception as error:  # it is being written: any failure to import only skips its rows
        return False, f"{type(error).__name__}: {error}"
    return True, ""


# ---------------------------------------------------------------------------------------------- measurements
def iqm(values: Sequence[float]) -> float:
    """
    :param values: one value per seed
    :return: interquartile mean (mean of the middle 50%, as rliable computes it: 25% trimmed from each end)
    """
    data = np.sort(np.asarray(values, dtype=float))
    cut = math.floor(0.25 * len(data))
    middle = data[cut : len(data) - cut] if len(data) - 2 * cut > 0 else data
    return float(np.mean(middle))


def normalized(score: float, reference_returns: tuple[float, float]) -> float:
    """
    :param score: a mean return
    :param reference_returns: ``(G_random, G_teacher)``
    :return: (G − G_random) / (G_teacher − G_random)
    """
    random_return, teacher_return = reference_returns
    return float((score - random_return) / (teacher_return - random_return))


def median_latency(function: Callable[[], Any], repeats: int = 500) -> float:
    """
    :param function: a call to time
    :param repeats: timed calls (after 20 warm-up calls)
    :return: median seconds per call
    """
    for _ in range(20):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


def latencies(predictor: Any, policy: Any, obs_normalizer: Any, observation: np.ndarray, workdir: Path) -> dict[str, float]:
    """
    One-observation CPU latencies of an agent: SB3 ``predict()``, the network's eager forward pass (observation
    normalization + network + argmax, as exported), and the exported TorchScript and ONNX files.

    :param predictor: anything with SB3's ``predict`` (a model, a ``Teacher``)
    :param policy: its SB3 policy
    :param obs_normalizer: its ``VecNormalize`` statistics, if any
    :param observation: one raw observation
    :param workdir: where to write the exported files
    :return: seconds per call, by name
    """
    import torch as th

    from sb3_distill.demo import predict_latency
    from sb3_distill.export import ExportedPolicy, export, load_exported

    result = {"predict": predict_latency(predictor, observation)}
    module = ExportedPolicy(policy, obs_normalizer)
    tensor = th.as_tensor(observation[None], dtype=th.float32)

    def forward() -> Any:
        with th.no_grad():
            return module(tensor)

    result["forward"] = median_latency(forward)
    batch = observation[None].astype(np.float32)
    for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")):
        try:
            path = export(policy, workdir / f"model{suffix}", fmt, vecnormalize=obs_normalizer)
            run = load_exported(path)
            result[fmt] = median_latency(lambda run=run: run(batch))
        except Exception as error:  # an exporter missing on this machine must not lose the learning results
            warnings.warn(f"{fmt} latency not measured: {error}")
    return result


def peak_rss_mb() -> float:
    """
    :return: peak resident set size of this process so far, in MB (Linux ``ru_maxrss`` is in KB)
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def acting_parameters(model: Any) -> int:
    """
    :param model: a DQN-family model or a PolicyDistill student
    :return: parameters of the network that acts (the Q-network; for actor-critic students, the policy branch)
    """
    from sb3_distill.teachers import count_parameters

    if hasattr(model, "q_net"):
        return count_parameters(model.q_net)
    policy = model.policy
    modules = [policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net]
    return sum(count_parameters(module) for module in modules)


def make_logger_free_dqn(model: Any, env: Any, seed: int) -> Any:
    """
    A plain SB3 DQN with the student's architecture and batch/buffer settings, holding a copy of ``model``'s
    replay data: the reference for the gradient-step time of ``model``.

    :param model: the trained student (DistillDQN or PolicyDistill)
    :param env: its env
    :param seed: seed
    :return: the DQN, ready for ``train()``
    """
    from stable_baselines3 import DQN
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.logger import configure

    plain = DQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=model.buffer_size,
        batch_size=model.batch_size,
        gamma=model.gamma,
        policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)),
        seed=seed,
        device="cpu",
    )
    plain.set_logger(configure(None, []))
    source: ReplayBuffer = model.replay_buffer
    buffer = ReplayBuffer(model.buffer_size, source.observation_space, source.action_space, device="cpu")
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        getattr(buffer, name)[:] = getattr(source, name)
    buffer.pos, buffer.full = source.pos, source.full
    plain.replay_buffer = buffer
    return plain


def _replay_transition(buffer: Any, source: Any, index: int) -> None:
    """Add ``source``'s transition ``index`` to ``buffer`` again, as a new env step would."""
    fields = ("observations", "next_observations", "actions", "rewards", "dones")
    buffer.add(*(getattr(source, name)[index].copy() for name in fields), [{}])


def gradient_step_times(models: dict[str, Any], n_steps: int, seed: int = 0, new_transitions: bool = True) -> dict[str, float]:
    """
    Seconds per gradient step of each model, interleaved in one process (alternating order, so that load from
    other processes hits all alike). With ``new_transitions``, one stored transition is added again to each buffer
    before every step, as an env step would with ``train_freq=1`` (a cache of teacher outputs pays for it there).

    :param models: name → model with ``train(gradient_steps, batch_size)`` and ``replay_buffer``; the buffers must
        hold the same transitions
    :param n_steps: timed gradient steps per model
    :param seed: seed of the transitions replayed
    :param new_transitions: add one transition per gradient step (else: gradient steps on a fixed buffer)
    :return: name → median seconds per gradient step (median over 5 blocks)
    """
    rng = np.random.default_rng(seed)
    reference = next(iter(models.values())).replay_buffer
    size = reference.size()
    blocks = 5
    per_block = max(n_steps // blocks, 1)
    totals: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for _ in range(blocks + 1):  # the first block warms up and is dropped
        spent = dict.fromkeys(names, 0.0)
        for step in range(per_block):
            index = int(rng.integers(size))
            order = names if step % 2 == 0 else names[::-1]
            for name in order:
                model = models[name]
                if new_transitions:
                    _replay_transition(model.replay_buffer, reference, index)
                start = time.perf_counter()
                model.train(gradient_steps=1, batch_size=model.batch_size)
                spent[name] += time.perf_counter() - start
        for name in names:
            totals[name].append(spent[name] / per_block)
    return {name: float(np.median(values[1:])) for name, values in totals.items()}


# ---------------------------------------------------------------------------------------------- jobs (one process each)
def _setup_worker() -> None:
    import torch as th

    th.set_num_threads(1)  # 2 shared cores: one thread per run, small networks are fastest that way anyway
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*rich is experimental.*")


def _load_teacher(env_id: str, zoo_dir: str | None) -> Any:
    from sb3_distill import load_teacher
    from sb3_distill.teachers.loading import BUNDLED_DIR

    # The given zoo folder (or the bundled teachers) first, so a ./logs folder never changes what is measured.
    return load_teacher(f"dqn/{env_id}", env=env_id, device="cpu", zoo_dirs=[zoo_dir or BUNDLED_DIR])


def snapshot_teachers(envs: Sequence[str], zoo_dir: str | None, target: Path) -> Path:
    """
    Copy the DQN teacher run folders of ``envs`` (from ``zoo_dir`` or the bundled teachers) into ``target``, so that
    every run of the benchmark uses the same files even if the teachers are re-trained meanwhile.

    :param envs: gymnasium ids
    :param zoo_dir: an rl-zoo3 log folder (default: the bundled teachers)
    :param target: the snapshot folder (replaced)
    :return: ``target``, an rl-zoo3 log folder
    """
    import shutil

    from sb3_distill.teachers.legacy import legacy_env_ids
    from sb3_distill.teachers.loading import BUNDLED_DIR

    source = Path(zoo_dir) if zoo_dir else BUNDLED_DIR
    if target.exists():
        shutil.rmtree(target)
    for env_id in envs:
        runs = [run for name in legacy_env_ids(env_id) for run in (source / "dqn").glob(f"{name}_*") if run.is_dir()]
        if not runs:
            raise FileNotFoundError(f"No dqn/{env_id}_N teacher in {source}: train one (rl-zoo3) or drop --zoo-dir.")
        for run in runs:
            shutil.copytree(run, target / "dqn" / run.name)
    return target


def teacher_job(env_id: str, zoo_dir: str | None, n_episodes: int = TEACHER_EPISODES, seed: int = 0) -> dict[str, Any]:
    """
    The teacher of ``env_id``: returns of the teacher and of a uniformly random policy, size, latencies.

    :param env_id: gymnasium id
    :param zoo_dir: an rl-zoo3 folder of teachers (default: the bundled ones)
    :param n_episodes: episodes for each of the two returns
    :param seed: seed of the evaluation env
    :return: the teacher's record
    """
    _setup_worker()
    from sb3_distill.teachers import reference_returns

    teacher = _load_teacher(env_id, zoo_dir)
    digest = hashlib.sha256(teacher.source_path.read_bytes()).hexdigest() if teacher.source_path else None
    env = teacher.make_env(seed=seed)
    random_returns, returns = reference_returns(teacher, env, n_episodes, seed)
    observation = env.observation_space.sample()
    with tempfile.TemporaryDirectory() as workdir:
        latency = latencies(teacher, teacher.policy, teacher.obs_normalizer, observation, Path(workdir))
    return dict(
        env=env_id,
        source=str(teacher.source),
        sha256=digest,
        teacher_return=float(np.mean(returns)),
        teacher_return_std=float(np.std(returns)),
        random_return=float(np.mean(random_returns)),
        n_episodes=n_episodes,
        params=teacher.num_parameters,
        latency_s=latency,
    )


def _eval_callback_class() -> type:
    # SB3 is imported in the workers only: the parent process stays light.
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    class TeacherNormalizedEval(BaseCallback):
        """
        Evaluate the model at fixed env steps (deterministic, ``n_eval_episodes`` on a separate env) and record
        the teacher-normalized score and the training wall time so far (evaluation time excluded).

        :param eval_env: the evaluation env
        :param eval_steps: env steps at which to evaluate
        :param n_eval_episodes: episodes per evaluation
        :param reference_returns: ``(G_random, G_teacher)``
        """

        def __init__(
            self, eval_env: Any, eval_steps: Sequence[int], n_eval_episodes: int, reference_returns: tuple[float, float]
        ) -> None:
            super().__init__()
            self.eval_env = eval_env
            self.eval_steps = sorted(eval_steps)
            self.n_eval_episodes = n_eval_episodes
            self.reference_returns = reference_returns
            self.records: list[dict[str, float]] = []
            self._next = 0
            self._start = 0.0
            self._eval_seconds = 0.0

        def _on_training_start(self) -> None:
            self._start = time.perf_counter()

        def _on_step(self) -> bool:
            while self._next < len(self.eval_steps) and self.num_timesteps >= self.eval_steps[self._next]:
                started = time.perf_counter()
                mean, std = evaluate_policy(self.model, self.eval_env, self.n_eval_episodes, deterministic=True)
                train_seconds = started - self._start - self._eval_seconds
                self._eval_seconds += time.perf_counter() - started
                self.records.append(
                    dict(
                        step=int(self.eval_steps[self._next]),
                        mean_return=float(mean),
                        std_return=float(std),
                        normalized_score=normalized(float(mean), self.reference_returns),
                        train_seconds=float(train_seconds),
                    )
                )
                self._next += 1
            return True

    return TeacherNormalizedEval


def build_model(method: str, env_id: str, env: Any, teacher: Any, seed: int, reference_returns: tuple[float, float]) -> Any:
    """
    :param method: one of :data:`METHODS`
    :param env_id: gymnasium id
    :param env: the training VecEnv
    :param teacher: the teacher
    :param seed: seed
    :param reference_returns: ``(G_random, G_teacher)`` (for QDagger's coefficient)
    :return: the model, not trained
    """
    from stable_baselines3 import DQN

    if method == "dqn":
        hyperparams, _ = zoo_dqn_hyperparams(env_id)
        return DQN(env=env, seed=seed, device="cpu", **hyperparams)
    student = student_hyperparams(env_id)
    if method.startswith("distill_dqn:"):
        from sb3_distill import DistillDQN

        recipe = method.split(":", 1)[1]
        return DistillDQN(
            env=env, teacher=teacher, recipe=recipe, reference_returns=reference_returns, seed=seed, device="cpu", **student
        )
    if method == "policy_distill":
        from sb3_distill import PolicyDistill

        keys = ("policy", "learning_rate", "buffer_size", "learning_starts", "batch_size", "train_freq", "gradient_steps")
        return PolicyDistill(
            env=env,
            teacher=teacher,
            seed=seed,
            device="cpu",
            policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)),
            **{key: student[key] for key in keys},
        )
    raise ValueError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")


def training_job(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Train one method on one env with one seed, evaluating on the shared grid; then time its gradient step against a
    plain DQN of the same student (same process) and its one-observation latency.

    :param spec: ``env``, ``method``, ``seed``, ``budget``, ``reference_returns``, ``teacher_params``,
        ``eval_episodes``, ``grad_steps``, ``zoo_dir``
    :return: the result row
    """
    _setup_worker()
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.monitor import Monitor

    env_id, method, seed, budget = spec["env"], spec["method"], spec["seed"], spec["budget"]
    reference_returns = tuple(spec["reference_returns"])
    teacher = _load_teacher(env_id, spec["zoo_dir"])
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    model = build_model(method, env_id, env, teacher, seed, reference_returns)  # type: ignore[arg-type]
    eval_env = Monitor(gym.make(env_id))
    eval_env.reset(seed=10_000 + seed)
    callback = _eval_callback_class()(eval_env, eval_grid(budget), spec["eval_episodes"], reference_returns)
    started = time.perf_counter()
    model.learn(budget, callback=callback)
    total_seconds = time.perf_counter() - started
    records = callback.records
    row: dict[str, Any] = dict(env=env_id, method=method, seed=seed, budget=budget, curve=records)
    for level in LEVELS:
        reached = next((record for record in records if record["normalized_score"] >= level), None)
        row[f"steps_to_{level}"] = reached["step"] if reached else None
        row[f"train_seconds_to_{level}"] = reached["train_seconds"] if reached else None
    row["steps_to_teacher_level"] = row["steps_to_1.0"]
    row["final_normalized_score"] = records[-1]["normalized_score"]
    row["final_return"] = records[-1]["mean_return"]
    row["train_seconds"] = records[-1]["train_seconds"]
    row["total_seconds"] = total_seconds
    row["params"] = acting_parameters(model)
    row["params_ratio"] = row["params"] / spec["teacher_params"]
    row["peak_rss_mb"] = peak_rss_mb()
    row["latency_s"] = {}
    if spec.get("measure_latency", True):  # the same network for every seed: once per env × method is enough
        with tempfile.TemporaryDirectory() as workdir:
            observation = eval_env.observation_space.sample()
            row["latency_s"] = latencies(model, model.policy, None, observation, Path(workdir))
    if method != "dqn" and spec["grad_steps"] > 0:
        plain = make_logger_free_dqn(model, env, seed)
        times = gradient_step_times({"student": model, "dqn": plain}, spec["grad_steps"], seed)
        row["grad_step_s"], row["dqn_grad_step_s"] = times["student"], times["dqn"]
        row["grad_step_ratio"] = times["student"] / times["dqn"]
    return row


class _SeparatePasses:
    """Mixin for the measurement only: the teacher TD target with two teacher passes (s, then s'), no cache."""

    def _teacher_outputs(self, batch: Any) -> Any:
        teacher = self._require_teacher()  # type: ignore[attr-defined]
        if self.td_target != "teacher":  # type: ignore[attr-defined]
            return teacher.action_logits(batch.teacher_obs), None
        return teacher.q_values(batch.teacher_obs), teacher.q_values(batch.teacher_next_obs)


def gradient_profile_job(env_id: str, zoo_dir: str | None, n_steps: int, profile_steps: int) -> dict[str, Any]:
    """
    Gradient-step time of each DistillDQN recipe and teacher-output strategy vs a plain DQN step of the same
    student, same process, same replay data (interleaved); and cProfile breakdowns of the default with and
    without the cache.

    :param env_id: gymnasium id
    :param zoo_dir: teachers folder (default: bundled)
    :param n_steps: timed gradient steps per variant
    :param profile_steps: gradient steps under cProfile per profiled variant
    :return: seconds per step by variant, ratios, and profile summaries
    """
    _setup_worker()
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    from sb3_distill import DistillDQN

    class SeparatePassesDistillDQN(_SeparatePasses, DistillDQN):
        pass

    teacher = _load_teacher(env_id, zoo_dir)
    student = student_hyperparams(env_id)
    fill = min(5_000, student["buffer_size"])
    variants: dict[str, Any] = {}
    base = dict(student, learning_starts=fill + 1, teacher_rollout_steps=fill, pretrain_gradient_steps=0)
    for recipe in RECIPES:
        strategies = {"cache": (DistillDQN, True), "live": (DistillDQN, False)}
        if recipe == "seed":  # the only recipe with a teacher TD target: s and s' can be batched
            strategies["live, two passes"] = (SeparatePassesDistillDQN, False)
        for strategy, (cls, cache) in strategies.items():
            model = cls(
                env=make_vec_env(env_id, n_envs=1, seed=0),
                teacher=teacher,
                recipe=recipe,
                cache_teacher_outputs=cache,
                reference_returns=(0.0, 1.0),
                seed=0,
                device="cpu",
                **base,
            )
            model.learn(fill)  # the teacher fills the buffer: every variant holds the same transitions
            model.set_logger(configure(None, []))
            variants[f"{recipe} / {strategy}"] = model
    reference = next(iter(variants.values()))
    variants["plain DQN"] = make_logger_free_dqn(reference, reference.env, 0)
    fixed = gradient_step_times(variants, n_steps, new_transitions=False)
    times = gradient_step_times(variants, n_steps)
    dqn_time, fixed_dqn_time = times["plain DQN"], fixed["plain DQN"]
    profiles = {}
    for name in ("qdagger / cache", "qdagger / live"):
        profiler = cProfile.Profile()
        model = variants[name]
        rng = np.random.default_rng(1)
        for _ in range(profile_steps):
            _replay_transition(model.replay_buffer, reference.replay_buffer, int(rng.integers(fill)))
            profiler.enable()
            model.train(1, model.batch_size)
            profiler.disable()
        profiles[name] = _profile_summary(profiler, profile_steps)
    return dict(
        env=env_id,
        teacher_params=teacher.num_parameters,
        student_net_arch=STUDENT_NET_ARCH,
        batch_size=student["batch_size"],
        seconds_per_step=times,
        ratio_vs_dqn={name: value / dqn_time for name, value in times.items()},
        seconds_per_step_fixed_buffer=fixed,
        ratio_vs_dqn_fixed_buffer={name: value / fixed_dqn_time for name, value in fixed.items()},
        profiles=profiles,
    )


#: Where the time of a DistillDQN gradient step goes, as functions whose cumulative time is reported.
PROFILE_PARTS = {
    "teacher forward (sb3_distill.teachers.teacher q_values/action_logits)": ("teacher.py", "action_logits"),
    "teacher cache update (buffers.update_teacher_outputs)": ("buffers.py", "update_teacher_outputs"),
    "replay sampling (sample_student_teacher)": ("sampling.py", "sample_student_teacher"),
    "TD term (_td_term: target net + Huber)": ("distill_dqn.py", "_td_term"),
    "distillation loss (losses.distillation_loss)": ("losses.py", "distillation_loss"),
    "teacher agreement (losses.agreement)": ("losses.py", "agreement"),
    "backward (Tensor.backward)": ("_tensor.py", "backward"),
    "optimizer step (Adam.step)": ("adam.py", "step"),
    "gradient clipping (clip_grad_norm_)": ("clip_grad.py", "clip_grad_norm_"),
}


def _profile_summary(profiler: cProfile.Profile, steps: int) -> dict[str, float]:
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())  # total internal time = profiled wall time
    result = {"total per step (µs)": total / steps * 1e6}
    for label, (filename, function) in PROFILE_PARTS.items():
        cumulative = sum(entry[3] for (file, _, name), entry in table.items() if file.endswith(filename) and name == function)
        result[label] = cumulative / total if total else 0.0
    return result


def memory_job(env_id: str, variant: str, steps: int, zoo_dir: str | None) -> dict[str, Any]:
    """
    Peak RSS of one short run in a fresh process: plain DQN vs DistillDQN (with and without the teacher cache),
    the same student, the same buffer size (= ``steps``, so the whole buffer is written).

    :param env_id: gymnasium id
    :param variant: ``"dqn"``, ``"distill_dqn"`` or ``"distill_dqn (no cache)"``
    :param steps: env steps and buffer size
    :param zoo_dir: teachers folder
    :return: the probe's record
    """
    _setup_worker()
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import DistillDQN

    before = peak_rss_mb()
    student = dict(student_hyperparams(env_id), buffer_size=steps)
    env = make_vec_env(env_id, n_envs=1, seed=0)
    if variant == "dqn":
        model = DQN(env=env, seed=0, device="cpu", **student)
    else:
        teacher = _load_teacher(env_id, zoo_dir)
        cache = variant == "distill_dqn"
        model = DistillDQN(
            env=env,
            teacher=teacher,
            reference_returns=(0.0, 1.0),
            cache_teacher_outputs=cache,
            seed=0,
            device="cpu",
            **student,
        )
    model.learn(steps)
    return dict(env=env_id, variant=variant, steps=steps, buffer_size=steps, peak_rss_mb=peak_rss_mb(), rss_at_start_mb=before)


# ---------------------------------------------------------------------------------------------- orchestration
def _worker_init(scripts_dir: str) -> None:
    # Spawned workers import this file by name to unpickle the jobs.
    if scripts_dir not in sys.path:
        sys.path.insert(0, scripts_dir)


def run_jobs(
    jobs: Iterable[tuple[Callable[..., dict[str, Any]], tuple[Any, ...], int, str]], n_workers: int, progress: Any
) -> Iterable[tuple[str, dict[str, Any] | BaseException]]:
    """
    Run jobs in fresh processes (``spawn``, one job per process), at most ``n_workers`` at once.

    :param jobs: ``(function, args, weight, name)``; ``weight`` advances the progress bar when the job ends
    :param n_workers: processes at once
    :param progress: a tqdm bar
    :return: ``(name, result or exception)`` as jobs finish
    """
    context = multiprocessing.get_context("spawn")
    scripts_dir = str(Path(__file__).resolve().parent)
    with ProcessPoolExecutor(
        max_workers=n_workers, mp_context=context, initializer=_worker_init, initargs=(scripts_dir,), max_tasks_per_child=1
    ) as pool:
        futures: dict[Future, tuple[str, int]] = {}
        for function, args, weight, name in jobs:
            futures[pool.submit(function, *args)] = (name, weight)
        for future in as_completed(futures):
            name, weight = futures[future]
            progress.update(weight)
            progress.set_postfix_str(name[:60])
            error = future.exception()
            yield name, error if error is not None else future.result()


def summarize(rows: list[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """
    One summary per env × method: the mean curve over seeds and what it reaches, finals, ratios.

    :param rows: result rows
    :param teachers: teacher records by env
    :return: summaries (DQN's steps and wall time are the reference of the ratios)
    """
    summaries = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["env"], row["method"]), []).append(row)
    for (env_id, method), group in groups.items():
        steps = [record["step"] for record in group[0]["curve"]]
        scores = np.array([[record["normalized_score"] for record in row["curve"]] for row in group])
        mean_curve = scores.mean(axis=0)
        summary: dict[str, Any] = dict(env=env_id, method=method, seeds=sorted(row["seed"] for row in group))
        summary["n_seeds"] = len(group)
        summary["budget"] = group[0]["budget"]
        summary["steps"] = steps
        summary["mean_curve"] = mean_curve.tolist()
        for level in LEVELS:
            index = next((i for i, value in enumerate(mean_curve) if value >= level), None)
            summary[f"steps_to_{level}"] = steps[index] if index is not None else None
            reached = [row[f"steps_to_{level}"] for row in group if row[f"steps_to_{level}"] is not None]
            summary[f"seeds_reaching_{level}"] = len(reached)
            summary[f"median_seed_steps_to_{level}"] = float(np.median(reached)) if reached else None
        seconds = [row["train_seconds_to_1.0"] for row in group if row["train_seconds_to_1.0"] is not None]
        summary["median_train_seconds_to_1.0"] = float(np.median(seconds)) if seconds else None
        summary["median_train_seconds"] = float(np.median([row["train_seconds"] for row in group]))
        finals = [row["final_normalized_score"] for row in group]
        summary["final_score_mean"], summary["final_score_iqm"] = float(np.mean(finals)), iqm(finals)
        summary["final_score_std"] = float(np.std(finals))
        summary["params"], summary["params_ratio"] = group[0]["params"], group[0]["params_ratio"]
        ratios = [row["grad_step_ratio"] for row in group if row.get("grad_step_ratio") is not None]
        summary["grad_step_ratio"] = float(np.median(ratios)) if ratios else None
        teacher_latency = teachers[env_id]["latency_s"]
        for kind in ("predict", "forward", "torchscript", "onnx"):
            values = [row["latency_s"][kind] for row in group if kind in row["latency_s"]]
            summary[f"latency_{kind}_s"] = float(np.median(values)) if values else None
            if values and kind in teacher_latency:
                summary[f"latency_{kind}_ratio"] = summary[f"latency_{kind}_s"] / teacher_latency[kind]
        summary["peak_rss_mb"] = float(np.median([row["peak_rss_mb"] for row in group]))
        summaries.append(summary)
    by_key = {(summary["env"], summary["method"]): summary for summary in summaries}
    for summary in summaries:
        dqn = by_key.get((summary["env"], "dqn"))
        if dqn is None:
            continue
        # Where DQN never gets there within the zoo's budget, its whole budget (time) gives an upper bound.
        for key, ours, theirs, fallback in (
            ("steps_ratio_vs_dqn", "steps_to_1.0", "steps_to_1.0", "budget"),
            ("median_seed_steps_ratio_vs_dqn", "median_seed_steps_to_1.0", "median_seed_steps_to_1.0", "budget"),
            ("wall_time_ratio_vs_dqn", "median_train_seconds_to_1.0", "median_train_seconds_to_1.0", "median_train_seconds"),
        ):
            reference, bound = dqn[theirs], False
            if reference is None and summary[ours] is not None:
                reference, bound = dqn[fallback], True
            summary[key] = _ratio(summary[ours], reference)
            summary[f"{key}_is_upper_bound"] = bound
    order = {method: i for i, method in enumerate(METHODS)}
    return sorted(summaries, key=lambda s: (ENVS.index(s["env"]) if s["env"] in ENVS else 99, order.get(s["method"], 99)))


def _ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else float(value) / float(reference)


# ---------------------------------------------------------------------------------------------- reports
def _fmt(value: Any, pattern: str = "{:,.0f}", none: str = "never") -> str:
    return none if value is None else pattern.format(value)


def _bounded(summary: dict[str, Any], key: str, pattern: str) -> str:
    """A ratio to DQN, as "<x" where DQN never reached the level and its whole budget is the reference."""
    value = summary.get(key)
    if value is None:
        return "–"
    return ("<" if summary.get(f"{key}_is_upper_bound") else "") + pattern.format(value)


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


def markdown_report(results: dict[str, Any]) -> str:
    """
    :param results: the content of ``results.json``
    :return: the tables, in markdown
    """
    lines = [f"Command: `{results['command']}`", ""]
    if not results.get("complete", True):
        lines += ["**Partial results**: the run was still going (or was stopped) when this was written.", ""]
    lines += [f"Machine: {results['machine']}. Total wall time: {results['wall_seconds'] / 60:.1f} min.", ""]
    lines += ["### Teachers", ""]
    lines += [
        "| env | teacher return (30 ep.) | random return | parameters | predict() | forward | TorchScript | ONNX |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id, teacher in results["teachers"].items():
        latency = teacher["latency_s"]
        lines.append(
            f"| {env_id} | {teacher['teacher_return']:.1f} ± {teacher['teacher_return_std']:.1f} | "
            f"{teacher['random_return']:.1f} | {teacher['params']:,} | "
            + " | ".join(
                _fmt(_us(latency.get(kind)), "{:.0f} µs", "–") for kind in ("predict", "forward", "torchscript", "onnx")
            )
            + " |"
        )
    lines += ["", "### Learning", ""]
    lines += [
        "Normalized score = (G − G_random) / (G_teacher − G_random); 1.0 = teacher level. *Steps to 1.0*: first "
        "evaluation where the mean over seeds reaches it; *% of DQN's*: those steps / DQN-from-scratch's (\"<x\" where "
        "DQN never gets there within the zoo's budget: x = steps / that budget). *Per-seed median*: median over the "
        "seeds that reach 1.0 of their first evaluation at 1.0. Ratios: wall time to 1.0 (training only, evaluations "
        "excluded; median over seeds) student / DQN; gradient step distillation / plain DQN of the same student; "
        "one-observation latency student / teacher.",
        "",
        "| env | method | params (ratio) | seeds | steps to 0.9 | steps to 1.0 | % of DQN's | seeds at 1.0 "
        "| per-seed median steps to 1.0 (% of DQN's) | final (mean ± std) | final (IQM) | wall-time ratio | grad-step ratio "
        "| predict() ratio | forward ratio | ONNX µs | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["summary"]:
        lines.append(
            "| "
            + " | ".join(
                [
                    s["env"],
                    METHOD_LABELS.get(s["method"], s["method"]),
                    f"{s['params']:,} ({s['params_ratio']:.1%})",
                    str(s["n_seeds"]),
                    _fmt(s["steps_to_0.9"]),
                    _fmt(s["steps_to_1.0"]),
                    _bounded(s, "steps_ratio_vs_dqn", "{:.1%}"),
                    f"{s['seeds_reaching_1.0']}/{s['n_seeds']}",
                    _fmt(s["median_seed_steps_to_1.0"]) + f" ({_bounded(s, 'median_seed_steps_ratio_vs_dqn', '{:.1%}')})",
                    f"{s['final_score_mean']:.2f} ± {s['final_score_std']:.2f}",
                    f"{s['final_score_iqm']:.2f}",
                    _bounded(s, "wall_time_ratio_vs_dqn", "{:.2f}"),
                    _fmt(s["grad_step_ratio"], "{:.2f}", "–"),
                    _fmt(s.get("latency_predict_ratio"), "{:.2f}", "–"),
                    _fmt(s.get("latency_forward_ratio"), "{:.2f}", "–"),
                    _fmt(_us(s["latency_onnx_s"]), "{:.0f}", "–"),
                    f"{s['peak_rss_mb']:.0f}",
                ]
            )
            + " |"
        )
    if results.get("gradient_profile"):
        lines += ["", "### Gradient step: teacher outputs cached vs computed per batch", ""]
        profiles = results["gradient_profile"]
        variants = list(profiles[0]["seconds_per_step"])
        lines += [
            "Time per gradient step (ratio to a plain DQN step of the same student, same process, interleaved). "
            "*+1 transition*: one new transition per gradient step (train_freq=1, the set-up of the learning runs: "
            "the cache computes the teacher on it); *fixed buffer*: gradient steps only (the cost per step when "
            "several gradient steps share each new transition).",
            "",
            "| variant | " + " | ".join(f"{p['env']} +1 transition | {p['env']} fixed buffer" for p in profiles) + " |",
            "|---|" + "---|---|" * len(profiles),
        ]
        for variant in variants:
            cells = []
            for p in profiles:
                for key, ratio in (
                    ("seconds_per_step", "ratio_vs_dqn"),
                    ("seconds_per_step_fixed_buffer", "ratio_vs_dqn_fixed_buffer"),
                ):
                    value = p[key].get(variant)
                    cells.append("–" if value is None else f"{value * 1e6:.0f} µs ({p[ratio][variant]:.2f}×)")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        lines += ["", "Share of a qdagger gradient step (cProfile, cumulative time of each part):", ""]
        first = profiles[0]["profiles"]
        lines += ["| part | " + " | ".join(f"{p['env']} {name}" for p in profiles[:1] for name in first) + " |"]
        lines += ["|---|" + "---|" * len(first)]
        for part in next(iter(first.values())):
            cells = []
            for name in first:
                value = first[name][part]
                cells.append(f"{value:.0f}" if part.startswith("total") else f"{value:.0%}")
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
    if results.get("memory"):
        lines += ["", "### Peak RSS, same student and buffer size", ""]
        lines += [
            "| env | steps = buffer size | plain DQN | DistillDQN (cache) | DistillDQN (no cache) |",
            "|---|---|---|---|---|",
        ]
        by_env: dict[str, dict[str, dict[str, Any]]] = {}
        for probe in results["memory"]:
            by_env.setdefault(probe["env"], {})[probe["variant"]] = probe
        for env_id, probes in by_env.items():
            steps = next(iter(probes.values()))["steps"]
            cells = [
                _fmt(probes.get(v, {}).get("peak_rss_mb"), "{:.0f} MB", "–")
                for v in ("dqn", "distill_dqn", "distill_dqn (no cache)")
            ]
            lines.append(f"| {env_id} | {steps:,} | " + " | ".join(cells) + " |")
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(results["skipped"])]
    if results.get("failed"):
        lines += ["", "Failed runs: " + "; ".join(results["failed"])]
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """
    Normalized score vs env steps (log x), mean over seeds with the min–max band, one panel per env.

    :param results: the content of ``results.json``
    :param path: the PNG to write
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [env_id for env_id in ENVS if any(s["env"] == env_id for s in results["summary"])]
    columns = min(2, len(envs))
    rows_count = math.ceil(len(envs) / columns)
    figure, axes = plt.subplots(rows_count, columns, figsize=(6.5 * columns, 4.2 * rows_count), squeeze=False)
    colors = dict(zip(METHODS, plt.get_cmap("tab10").colors, strict=False))
    for axis, env_id in zip(axes.flat, envs, strict=False):
        for summary in (s for s in results["summary"] if s["env"] == env_id):
            method = summary["method"]
            rows = [row for row in results["rows"] if row["env"] == env_id and row["method"] == method]
            scores = np.array([[record["normalized_score"] for record in row["curve"]] for row in rows])
            steps = summary["steps"]
            label = f"{METHOD_LABELS.get(method, method)} ({summary['n_seeds']} seeds)"
            axis.plot(steps, scores.mean(axis=0), color=colors.get(method), label=label, linewidth=1.8)
            axis.fill_between(steps, scores.min(axis=0), scores.max(axis=0), color=colors.get(method), alpha=0.15)
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="teacher level (1.0)")
        axis.set_xscale("log")
        lowest = min(min(s["mean_curve"]) for s in results["summary"] if s["env"] == env_id)
        axis.set_ylim(max(min(lowest - 0.1, -0.2), -2.0), 1.4)
        axis.set_title(env_id)
        axis.set_xlabel("env steps (teacher-phase steps included)")
        axis.set_ylabel("teacher-normalized score")
        axis.grid(alpha=0.3, which="both")
    for axis in list(axes.flat)[len(envs) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=columns + 1, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.1 if rows_count == 1 else 0.06, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.json, benchmarks.md, benchmark.png)")
    parser.add_argument("--force", action="store_true", help="overwrite existing results in --out")
    parser.add_argument("--quick", action="store_true", help="1 seed, small budgets: under 10 minutes on 2 cores")
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS, metavar="ENV", help="default: all four")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per student method (default 5; --quick 1)")
    parser.add_argument("--dqn-seeds", type=int, default=None, help="seeds of DQN from scratch (default 3; --quick 1)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, each in its own process (default 2)")
    parser.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default 10; --quick 5)")
    parser.add_argument("--grad-steps", type=int, default=None, help="timed gradient steps per run (default 400; --quick 150)")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every budget (for smoke tests)")
    parser.add_argument("--no-profile", action="store_true", help="skip the gradient-step variants and the memory probes")
    parser.add_argument(
        "--report-only", action="store_true", help="only rebuild benchmarks.md and benchmark.png from --out/results.json"
    )
    parser.add_argument(
        "--zoo-dir", type=str, default=None, help="an rl-zoo3 folder with dqn/ENV_N teachers (default: bundled)"
    )
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """
    :param args: parsed arguments
    :return: seeds, budgets and measurement sizes of this run
    """
    mode = "quick" if args.quick else "full"
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    dqn_seeds = args.dqn_seeds if args.dqn_seeds is not None else (1 if args.quick else 3)
    budgets: dict[str, dict[str, int]] = {}
    for env_id in args.envs:
        _, zoo_steps = zoo_dqn_hyperparams(env_id)
        dqn_steps = min(zoo_steps, QUICK_DQN_CAP) if args.quick else zoo_steps
        budgets[env_id] = dict(
            student=max(int(STUDENT_BUDGETS[mode][env_id] * args.budget_scale), 200),
            dqn=max(int(dqn_steps * args.budget_scale), 200),
        )
    return dict(
        mode=mode,
        seeds=seeds,
        dqn_seeds=dqn_seeds,
        budgets=budgets,
        eval_episodes=args.eval_episodes or (5 if args.quick else 10),
        grad_steps=args.grad_steps if args.grad_steps is not None else (150 if args.quick else 400),
        memory_steps=max(int((2_000 if args.quick else 5_000) * args.budget_scale), 200),
        profile_steps=max(int((300 if args.quick else 1_000) * args.budget_scale), 50),
    )


def main(argv: Sequence[str] | None = None) -> int:  # noqa: C901
    """
    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :return: exit status
    """
    args = parse_args(argv)
    out: Path = args.out
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
        write_outputs(results, out)
        print(markdown_report(results))
        return 0
    outputs = [out / "results.json", out / "benchmarks.md", out / "benchmark.png"]
    existing = [path for path in outputs if path.exists()]
    if existing and not args.force:
        print(f"{existing[0]} exists: choose another --out or pass --force to overwrite it.", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    started = time.perf_counter()
    settings = plan(args)
    methods = list(args.methods)
    skipped = []
    if "policy_distill" in methods:
        available, reason = policy_distill_available()
        if not available:
            methods.remove("policy_distill")
            skipped.append(f"PolicyDistill ({reason})")
    runs = []
    for env_id in args.envs:
        for method in methods:
            n_seeds = settings["dqn_seeds"] if method == "dqn" else settings["seeds"]
            budget = settings["budgets"][env_id]["dqn" if method == "dqn" else "student"]
            runs += [(env_id, method, seed, budget) for seed in range(n_seeds)]
    extra_jobs = 0 if args.no_profile else len(args.envs) * 4
    total = sum(run[3] for run in runs) + len(args.envs) * 1_000 + extra_jobs * 1_000
    progress = tqdm(total=total, unit="step", desc="benchmark", dynamic_ncols=True)

    teachers: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    zoo_dir = str(snapshot_teachers(args.envs, args.zoo_dir, out / "teachers"))
    teacher_jobs = [(teacher_job, (env_id, zoo_dir), 1_000, f"teacher {env_id}") for env_id in args.envs]
    for name, result in run_jobs(teacher_jobs, args.jobs, progress):
        if isinstance(result, BaseException):
            raise RuntimeError(f"{name} failed: {result!r}") from result
        teachers[result["env"]] = result
    teachers = {env_id: teachers[env_id] for env_id in args.envs}

    jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...], int, str, int]] = []
    for env_id, method, seed, budget in runs:
        teacher = teachers[env_id]
        spec = dict(
            env=env_id,
            method=method,
            seed=seed,
            budget=budget,
            reference_returns=(teacher["random_return"], teacher["teacher_return"]),
            teacher_params=teacher["params"],
            eval_episodes=settings["eval_episodes"],
            grad_steps=settings["grad_steps"],
            measure_latency=seed == 0,
            zoo_dir=zoo_dir,
        )
        jobs.append((training_job, (spec,), budget, f"{env_id} {method} seed {seed}", seed))
    if not args.no_profile:
        for env_id in args.envs:
            jobs.append(
                (
                    gradient_profile_job,
                    (env_id, zoo_dir, settings["grad_steps"], settings["profile_steps"]),
                    1_000,
                    f"gradient profile {env_id}",
                    0,
                )
            )
            for variant in ("dqn", "distill_dqn", "distill_dqn (no cache)"):
                jobs.append(
                    (
                        memory_job,
                        (env_id, variant, settings["memory_steps"], zoo_dir),
                        1_000,
                        f"memory {env_id} {variant}",
                        0,
                    )
                )
    # The longest runs first, so that the two workers end together.
    # Seed by seed (the longest runs first within a seed): results written after every run stay balanced across
    # methods, and an interrupted run still has complete seeds.
    jobs.sort(key=lambda job: (job[4], -job[2]))
    import platform

    import torch as th

    results: dict[str, Any] = dict(
        command="python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {th.__version__}, "
        "1 torch thread per run, no GPU",
        settings=settings,
        student_net_arch=STUDENT_NET_ARCH,
        teachers=teachers,
        rows=[],
        summary=[],
        gradient_profile=[],
        memory=[],
        skipped=skipped,
        failed=failed,
        complete=False,
        wall_seconds=0.0,
    )
    remaining = len(jobs)
    for name, result in run_jobs([job[:4] for job in jobs], args.jobs, progress):
        remaining -= 1
        if isinstance(result, BaseException):
            failed.append(f"{name}: {type(result).__name__}: {result}")
            tqdm.write(f"FAILED {name}: {result!r}")
        elif name.startswith("gradient profile"):
            results["gradient_profile"].append(result)
        elif name.startswith("memory"):
            results["memory"].append(result)
        else:
            results["rows"].append(result)
        results["complete"] = remaining == 0
        results["wall_seconds"] = time.perf_counter() - started
        write_outputs(results, out, plot=remaining == 0 or remaining % 10 == 0)
    progress.close()
    print(markdown_report(results))
    print(f"Wrote {', '.join(str(path) for path in outputs)}")
    return 1 if failed else 0


def write_outputs(results: dict[str, Any], out: Path, plot: bool = True) -> None:
    """
    Sort, summarize and write ``results.json``, ``benchmarks.md`` and (``plot``) ``benchmark.png``; called after
    every finished run, so that an interrupted benchmark keeps what it measured.

    :param results: the results so far (sorted in place)
    :param out: the output folder
    :param plot: also draw the curves
    """
    results["rows"].sort(key=lambda row: (ENVS.index(row["env"]), METHODS.index(row["method"]), row["seed"]))
    results["gradient_profile"].sort(key=lambda p: ENVS.index(p["env"]))
    results["memory"].sort(key=lambda p: (ENVS.index(p["env"]), p["variant"]))
    results["summary"] = summarize(results["rows"], results["teachers"]) if results["rows"] else []
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "benchmarks.md").write_text(markdown_report(results))
    if plot and results["summary"]:
        plot_curves(results, out / "benchmark.png")


if __name__ == "__main__":
    raise SystemExit(main())
