"""
What a distillation gradient step costs and what the teacher-output cache saves: each DistillDQN recipe with and
without the cache against a plain DQN step of the same student, PolicyDistill with and without it against a plain
supervised step of its student (same process, same replay data), cProfile shares, and peak RSS probes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

import numpy as np

from .measure import SupervisedStep, copy_replay_data, gradient_step_times, peak_rss_mb, replay_transition
from .report import fmt, table
from .runners import setup_worker
from .suite import Job, get_suite

MEMORY_VARIANTS = ("dqn", "distill_dqn", "distill_dqn (no cache)")

#: Where the time of a DistillDQN or PolicyDistill gradient step goes, as functions whose cumulative time is reported
#: (of nested calls of the same function, the outermost).
PROFILE_PARTS = {
    "teacher forward (sb3_distill.teachers.teacher action_logits)": ("teacher.py", "action_logits"),
    "teacher cache update (buffers.update_teacher_outputs)": ("buffers.py", "update_teacher_outputs"),
    "replay sampling (SB3's sample + the teacher buffers' _get_samples)": ("stable_baselines3/common/buffers.py", "sample"),
    "TD target (_next_q_values: target net or teacher)": ("distill_dqn.py", "_next_q_values"),
    "distillation loss (losses.distillation_loss)": ("losses.py", "distillation_loss"),
    "teacher agreement (losses.agreement)": ("losses.py", "agreement"),
    "student forward (PolicyDistill: get_distribution)": ("stable_baselines3/common/policies.py", "get_distribution"),
    "policy loss (PolicyDistill: policy_terms.policy_term)": ("policy_terms.py", "policy_term"),
    "finite check (PolicyDistill: _check_finite)": ("policy_distill.py", "_check_finite"),
    "backward (Tensor.backward)": ("_tensor.py", "backward"),
    "optimizer step (Adam.step)": ("adam.py", "step"),
    "gradient clipping (clip_grad_norm_)": ("clip_grad.py", "clip_grad_norm_"),
}


def plain_dqn_copy(model: Any, env: Any, seed: int, net_arch: list[int]) -> Any:
    """
    A plain SB3 DQN with the student's architecture and batch/buffer settings, holding a copy of ``model``'s
    replay data: the reference for the gradient-step time of ``model``.

    :param model: the trained student (DistillDQN or PolicyDistill)
    :param env: its env
    :param seed: seed
    :param net_arch: the student's hidden layers
    :return: the DQN, ready for ``train()``
    """
    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import configure

    plain = DQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=model.buffer_size,
        batch_size=model.batch_size,
        gamma=model.gamma,
        policy_kwargs=dict(net_arch=list(net_arch)),
        seed=seed,
        device="cpu",
    )
    plain.set_logger(configure(None, []))
    copy_replay_data(model.replay_buffer, plain)
    return plain


def _distill_dqn(cls: type, suite: Any, env_id: str, teacher: Any, student: dict[str, Any], **kwargs: Any) -> Any:
    return cls(
        env=suite.make_env(env_id, teacher, 0),
        teacher=teacher,
        reference_returns=(0.0, 1.0),
        seed=0,
        device="cpu",
        **student,
        **kwargs,
    )


#: PolicyDistill's variants and the plain step they are compared with (the others: plain DQN).
POLICY_DISTILL_VARIANTS = {"PolicyDistill / cache": True, "PolicyDistill / live": False}
SUPERVISED = "plain supervised (PolicyDistill's student)"
POLICY_DISTILL_KEYS = ("policy", "learning_rate", "buffer_size", "batch_size", "train_freq", "gradient_steps")


def _policy_distill_variants(suite: Any, env_id: str, teacher: Any, student: dict[str, Any], source: Any) -> dict[str, Any]:
    """PolicyDistill with and without its cache (the suite's PolicyDistill settings), holding ``source``'s
    transitions, and a plain supervised step of the same student."""
    from stable_baselines3.common.logger import configure

    from sb3_distill import PolicyDistill

    variants: dict[str, Any] = {}
    for name, cache in POLICY_DISTILL_VARIANTS.items():
        model = PolicyDistill(
            env=suite.make_env(env_id, teacher, 0),
            teacher=teacher,
            seed=0,
            device="cpu",
            policy_kwargs=student["policy_kwargs"],
            cache_teacher_outputs=cache,
            **{key: student[key] for key in POLICY_DISTILL_KEYS},
        )
        model.set_logger(configure(None, []))
        buffer = model.replay_buffer
        for field in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            getattr(buffer, field)[:] = getattr(source, field)
        buffer.pos, buffer.full = source.pos, source.full
        buffer._n_pending = buffer.size()  # the cache is filled at the first gradient step (the warm-up block)
        variants[name] = model
    variants[SUPERVISED] = SupervisedStep(variants["PolicyDistill / cache"])
    return variants


def reference_of(variant: str) -> str:
    """:return: the plain step a variant of the gradient profile is compared with"""
    return SUPERVISED if variant in POLICY_DISTILL_VARIANTS or variant == SUPERVISED else "plain DQN"


def gradient_profile_job(
    suite_ref: tuple[str, dict[str, str]],
    env_id: str,
    zoo_dir: str,
    student: dict[str, Any],
    recipes: list[str],
    n_steps: int,
    profile_steps: int,
) -> dict[str, Any]:
    """
    Gradient-step time of each DistillDQN recipe and teacher-output strategy vs a plain DQN step of the same
    student, and of PolicyDistill with and without its cache vs a plain supervised step of the same student, in one
    process on the same replay data (interleaved); and cProfile breakdowns of qdagger and PolicyDistill with and
    without the cache.

    :param suite_ref: the suite's name and teachers (for the teacher and the env)
    :param env_id: gymnasium id
    :param zoo_dir: the teachers' folder
    :param student: the student's DistillDQN keyword arguments
    :param recipes: the recipes to time
    :param n_steps: timed gradient steps per variant
    :param profile_steps: gradient steps under cProfile per profiled variant
    :return: seconds per step by variant, ratios, and profile summaries
    """
    setup_worker()
    from stable_baselines3.common.logger import configure

    from sb3_distill import DistillDQN

    suite = get_suite(*suite_ref)
    teacher = suite.load_teacher(env_id, zoo_dir)
    fill = min(5_000, student["buffer_size"])
    base = dict(student, learning_starts=fill + 1, teacher_rollout_steps=fill, pretrain_gradient_steps=0)
    variants: dict[str, Any] = {}
    for recipe in recipes:
        for strategy, cache in {"cache": True, "live": False}.items():
            model = _distill_dqn(DistillDQN, suite, env_id, teacher, base, recipe=recipe, cache_teacher_outputs=cache)
            model.learn(fill)  # the teacher fills the buffer: every variant holds the same transitions
            model.set_logger(configure(None, []))
            variants[f"{recipe} / {strategy}"] = model
    reference = next(iter(variants.values()))
    variants["plain DQN"] = plain_dqn_copy(reference, reference.env, 0, student["policy_kwargs"]["net_arch"])
    variants.update(_policy_distill_variants(suite, env_id, teacher, student, reference.replay_buffer))
    # CPU time of this process (one torch thread): the shared machine's load does not stretch it
    fixed = gradient_step_times(variants, n_steps, new_transitions=False, clock=time.process_time)
    times = gradient_step_times(variants, n_steps, clock=time.process_time)
    profiles = {}
    for name in ("qdagger / cache", "qdagger / live", "PolicyDistill / cache", "PolicyDistill / live"):
        if name in variants:
            profiles[name] = _profile(variants[name], reference.replay_buffer, fill, profile_steps)
    return dict(
        env=env_id,
        teacher_params=teacher.num_parameters,
        batch_size=student["batch_size"],
        seconds_per_step=times,
        ratio_vs_reference={name: value / times[reference_of(name)] for name, value in times.items()},
        seconds_per_step_fixed_buffer=fixed,
        ratio_vs_reference_fixed_buffer={name: value / fixed[reference_of(name)] for name, value in fixed.items()},
        profiles=profiles,
    )


def _profile(model: Any, source: Any, fill: int, steps: int) -> dict[str, float]:
    profiler = cProfile.Profile()
    rng = np.random.default_rng(1)
    for _ in range(steps):
        replay_transition(model.replay_buffer, source, int(rng.integers(fill)))
        profiler.enable()
        model.train(1, model.batch_size)
        profiler.disable()
    table_ = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table_.values())  # total internal time = profiled wall time
    result = {"total per step (µs)": total / steps * 1e6}
    for label, (filename, function) in PROFILE_PARTS.items():
        matches = [entry[3] for (file, _, name), entry in table_.items() if file.endswith(filename) and name == function]
        cumulative = max(matches, default=0.0)
        result[label] = cumulative / total if total else 0.0
    return result


def memory_job(
    suite_ref: tuple[str, dict[str, str]], env_id: str, variant: str, steps: int, zoo_dir: str, student: dict[str, Any]
) -> dict[str, Any]:
    """
    Peak RSS of one short run in a fresh process: plain DQN vs DistillDQN (with and without the teacher cache),
    the same student, the same buffer size (= ``steps``, so the whole buffer is written).

    :param suite_ref: the suite's name and teachers (for the teacher and the env)
    :param env_id: gymnasium id
    :param variant: one of :data:`MEMORY_VARIANTS`
    :param steps: env steps and buffer size
    :param zoo_dir: the teachers' folder
    :param student: the student's DistillDQN keyword arguments
    :return: the probe's record
    """
    setup_worker()
    from stable_baselines3 import DQN

    from sb3_distill import DistillDQN

    before = peak_rss_mb()
    suite = get_suite(*suite_ref)
    student = dict(student, buffer_size=steps)
    if variant == "dqn":
        model = DQN(env=suite.make_env(env_id, None, 0), seed=0, device="cpu", **student)
    else:
        teacher = suite.load_teacher(env_id, zoo_dir)
        model = _distill_dqn(DistillDQN, suite, env_id, teacher, student, cache_teacher_outputs=variant == "distill_dqn")
    model.learn(steps)
    return dict(env=env_id, variant=variant, steps=steps, buffer_size=steps, peak_rss_mb=peak_rss_mb(), rss_at_start_mb=before)


def cost_probe_jobs(
    suite_ref: tuple[str, dict[str, str]],
    students: dict[str, dict[str, Any]],
    recipes: list[str],
    zoo_dir: str,
    settings: dict[str, Any],
    args: argparse.Namespace,
) -> list[Job]:
    """
    :param suite_ref: the suite's name and teachers
    :param students: env id → the student's DistillDQN keyword arguments
    :param recipes: the recipes to time
    :param zoo_dir: the teachers' folder
    :param settings: the run's plan (``grad_steps``)
    :param args: parsed arguments (``quick``, ``budget_scale``)
    :return: one gradient profile and three memory probes per env
    """
    memory_steps = max(int((2_000 if args.quick else 5_000) * args.budget_scale), 200)
    profile_steps = max(int((300 if args.quick else 1_000) * args.budget_scale), 50)
    jobs = []
    for env_id, student in students.items():
        profile_args = (suite_ref, env_id, zoo_dir, student, recipes, settings["grad_steps"], profile_steps)
        jobs.append(Job(gradient_profile_job, profile_args, f"gradient profile {env_id}", "gradient_profile"))
        for variant in MEMORY_VARIANTS:
            memory_args = (suite_ref, env_id, variant, memory_steps, zoo_dir, student)
            jobs.append(Job(memory_job, memory_args, f"memory {env_id} {variant}", "memory"))
    return jobs


def cost_probe_sections(results: dict[str, Any]) -> list[str]:
    """
    :param results: the content of ``results.json``
    :return: the gradient-step and memory tables, in markdown
    """
    lines: list[str] = []
    profiles = results.get("gradient_profile")
    if profiles:
        lines += ["", "### Gradient step: teacher outputs cached vs computed per batch", ""]
        lines += [
            "CPU time per gradient step (one torch thread), all variants in one process, interleaved, on the same "
            "replay data; ratio to a "
            "plain DQN step of the same student (DistillDQN), or to a plain supervised step of PolicyDistill's student "
            "(behaviour cloning of the stored actions, same network, optimizer and batch: `PolicyDistill` and "
            "`plain supervised` rows). *+1 transition*: one new transition per gradient step (train_freq=1, the set-up "
            "of the learning runs: the cache computes the teacher on it); *fixed buffer*: gradient steps only (the "
            "cost per step when several gradient steps share each new transition).",
            "",
        ]
        header = ["variant", *(f"{p['env']} {kind}" for p in profiles for kind in ("+1 transition", "fixed buffer"))]
        rows = []
        for variant in profiles[0]["seconds_per_step"]:
            cells = [variant]
            for p in profiles:
                for key, ratio in (
                    ("seconds_per_step", "ratio_vs_reference"),
                    ("seconds_per_step_fixed_buffer", "ratio_vs_reference_fixed_buffer"),
                ):
                    value = p[key].get(variant)
                    ratios = p.get(ratio, p.get(ratio.replace("reference", "dqn"), {}))  # runs before PolicyDistill's rows
                    cells.append("–" if value is None else f"{value * 1e6:.0f} µs ({ratios[variant]:.2f}×)")
            rows.append(cells)
        lines += [*table(header, rows), "", "Share of a gradient step (cProfile, cumulative time of each part):", ""]
        first = profiles[0]["profiles"]
        rows = [
            [part, *(f"{first[name][part]:.0f}" if part.startswith("total") else f"{first[name][part]:.0%}" for name in first)]
            for part in next(iter(first.values()))
        ]
        lines += table(["part", *(f"{profiles[0]['env']} {name}" for name in first)], rows)
    if results.get("memory"):
        by_env: dict[str, dict[str, dict[str, Any]]] = {}
        for probe in results["memory"]:
            by_env.setdefault(probe["env"], {})[probe["variant"]] = probe
        rows = [
            [env_id, f"{next(iter(probes.values()))['steps']:,}"]
            + [fmt(probes.get(v, {}).get("peak_rss_mb"), "{:.0f} MB", "–") for v in MEMORY_VARIANTS]
            for env_id, probes in by_env.items()
        ]
        lines += ["", "### Peak RSS, same student and buffer size", ""]
        lines += table(["env", "steps = buffer size", "plain DQN", "DistillDQN (cache)", "DistillDQN (no cache)"], rows)
    return lines
