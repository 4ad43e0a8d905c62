"""
The jobs of a benchmark, each run in a fresh process (``spawn``, one job per process, one torch thread): the teacher's
reference measurements and one training run (method × env × seed) with its evaluations, sizes, latency, memory and
gradient-step time. What to build comes from the suite, named in the job so that the worker imports it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import tempfile
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from .measure import (
    acting_and_critic_parameters,
    eval_callback_class,
    SupervisedStep,
    gradient_step_times,
    latency_calls,
    load_times,
    peak_rss_mb,
    time_calls,
)
from .stats import first_reaching
from .suite import Job, get_suite


def setup_worker() -> None:
    """One torch thread per run (2 shared cores; small networks are fastest that way anyway), quiet warnings."""
    import torch as th

    th.set_num_threads(1)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*rich is experimental.*")


def teacher_job(suite_name: str, teachers: dict[str, str], env_id: str, zoo_dir: str | None, seed: int = 0) -> dict[str, Any]:
    """
    The teacher of ``env_id``: returns of the teacher and of a uniformly random policy on the suite's evaluation env,
    size, latencies, and its own training budget (``n_timesteps`` of its ``config.yml``, the anchor of step counts).

    :param suite_name: the suite
    :param teachers: the run's teachers (env id → zoo id)
    :param env_id: gymnasium id
    :param zoo_dir: the teachers' folder
    :param seed: seed of the evaluation env and of the random actions
    :return: the teacher's record
    """
    setup_worker()
    from sb3_distill import load_teacher
    from sb3_distill.teachers import reference_returns
    from sb3_distill.teachers.loading import BUNDLED_DIR

    suite = get_suite(suite_name, teachers)
    teacher = suite.load_teacher(env_id, zoo_dir)
    digest = hashlib.sha256(teacher.source_path.read_bytes()).hexdigest() if teacher.source_path else None
    agents: dict[str, Any] = {"teacher": teacher}
    if env_id in suite.reference_teachers:
        agents["reference"] = suite.load_teacher(env_id, zoo_dir, suite.reference_teachers[env_id])
    returns = {}
    for name, agent in agents.items():
        # The package's measurement (Teacher.reference_returns's) on the suite's evaluation env, kept per episode for
        # the spread; it reseeds the env before each policy, so every agent plays the random policy's episodes.
        env = suite.make_reference_env(env_id, teacher, seed)
        returns["random"], returns[name] = reference_returns(agent, env, suite.teacher_episodes, seed)
        env.close()
    with tempfile.TemporaryDirectory() as workdir:
        latency = time_calls(
            latency_calls(
                teacher,
                teacher.policy,
                teacher.obs_normalizer,
                teacher.observation_space,
                Path(workdir),
                suite.latency_batch_sizes,
            )
        )
    training_steps = teacher.config.get("n_timesteps")
    reference = returns.get("reference", returns["teacher"])
    # The load alone, by the safe reader (the default) and by SB3's: what reading a teacher without unpickling costs.
    spec, roots = suite.teachers[env_id], [zoo_dir or BUNDLED_DIR]
    load_s = load_times(lambda trust: load_teacher(spec, device="cpu", zoo_dirs=roots, trust_remote_code=trust))
    return dict(
        env=env_id,
        teacher=suite.teachers[env_id],
        source=str(teacher.source),
        sha256=digest,
        teacher_return=float(np.mean(returns["teacher"])),
        teacher_return_std=float(np.std(returns["teacher"])),
        random_return=float(np.mean(returns["random"])),
        reference_return=float(np.mean(reference)),
        reference=suite.reference_teachers.get(env_id, suite.teachers[env_id]),
        n_episodes=suite.teacher_episodes,
        params=teacher.num_parameters,
        training_steps=int(float(training_steps)) if training_steps is not None else None,
        latency_s=latency,
        load_s=load_s,
    )


def training_job(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Train one method on one env with one seed, evaluating on the shared grid; then its sizes, peak RSS, latency
    (``measure_latency``) and gradient-step time against the suite's reference model (same process, same data).

    :param spec: ``suite``, ``env``, ``method``, ``seed``, ``budget``, ``reference_returns`` (the normalized scale),
        ``teacher_returns`` (random and teacher, e.g. for QDagger's coefficient), ``levels``,
        ``teacher_params``, ``eval_episodes``, ``grad_steps``, ``measure_latency``, ``zoo_dir``, ``settings``
    :return: the result row
    """
    setup_worker()
    suite = get_suite(spec["suite"], spec["settings"]["teachers"])
    env_id, method, seed, budget = spec["env"], spec["method"], spec["seed"], spec["budget"]
    reference_returns = tuple(spec["reference_returns"])
    teacher = suite.load_teacher(env_id, spec["zoo_dir"])
    env = suite.make_env(env_id, teacher, seed)
    model = suite.build_model(method, env_id, env, teacher, seed, spec)
    eval_env = suite.make_eval_env(env_id, teacher, 10_000 + seed)
    callback = eval_callback_class()(eval_env, suite.eval_steps(budget), spec["eval_episodes"], reference_returns)
    started = time.perf_counter()
    model.learn(budget, callback=callback)
    total_seconds = time.perf_counter() - started
    records = callback.records
    row: dict[str, Any] = dict(env=env_id, method=method, seed=seed, budget=budget, curve=records, levels=spec["levels"])
    for name, level in spec["levels"].items():
        reached = first_reaching(records, level)
        row[f"steps_to_{name}"] = reached["step"] if reached else None
        row[f"train_seconds_to_{name}"] = reached["train_seconds"] if reached else None
    row["steps_to_teacher_level"] = row.get("steps_to_1.0")
    row["final_normalized_score"] = records[-1]["normalized_score"]
    row["final_return"] = records[-1]["mean_return"]
    row["train_seconds"] = records[-1]["train_seconds"]
    row["total_seconds"] = total_seconds
    row["params"], row["critic_params"] = acting_and_critic_parameters(model)
    row["params_ratio"] = row["params"] / spec["teacher_params"]
    row["peak_rss_mb"] = peak_rss_mb()
    row["latency_s"] = {}
    if spec.get("measure_latency", True):  # the same network for every seed: once per env × method is enough
        with tempfile.TemporaryDirectory() as workdir:
            policy = model.policy
            calls = latency_calls(
                model,
                policy,
                model.get_vec_normalize_env(),
                policy.observation_space,
                Path(workdir),
                suite.latency_batch_sizes,
            )
            row["latency_s"] = time_calls(calls)
    row.update(suite.after_training(method, env_id, model, teacher, spec))
    reference = suite.gradient_step_reference(method, model, env, seed) if spec["grad_steps"] > 0 else None
    if reference is not None:
        name, plain = reference
        times = gradient_step_times({"student": model, name: plain}, spec["grad_steps"], seed)
        row["grad_step_reference"] = name
        row["grad_step_s"], row["reference_grad_step_s"] = times["student"], times[name]
        row["grad_step_ratio"] = times["student"] / times[name]
    if spec["grad_steps"] > 0 and hasattr(model, "cache_teacher_outputs") and hasattr(model.policy, "get_distribution"):
        # PolicyDistill: against a plain supervised step of the same student (same data, no teacher)
        times = gradient_step_times({"student": model, "plain supervised": SupervisedStep(model)}, spec["grad_steps"], seed)
        row["supervised_grad_step_s"] = times["plain supervised"]
        row["supervised_grad_step_ratio"] = times["student"] / times["plain supervised"]
    return row


def run_jobs(jobs: Iterable[Job], n_workers: int, progress: Any) -> Iterable[tuple[Job, dict[str, Any] | BaseException]]:
    """
    Run jobs in fresh processes (``spawn``, one job per process), at most ``n_workers`` at once.

    :param jobs: the jobs; ``weight`` advances the progress bar when a job ends
    :param n_workers: processes at once
    :param progress: a tqdm bar
    :return: ``(job, result or exception)`` as jobs finish
    """
    # Spawned workers import the benchmark package by name to unpickle the jobs: spawn gives them the parent's sys.path
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures: dict[Future, Job] = {pool.submit(job.function, *job.args): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            progress.update(job.weight)
            progress.set_postfix_str(job.name[:60])
            error = future.exception()
            yield job, error if error is not None else future.result()
