"""Measure DistillDQN's defaults (or a variant of them) from the bundled teachers: how the default recipe was chosen.

One process, one thread, one run at a time. Each run: ``DistillDQN("MlpPolicy", env, teacher=..., seed=s, **kwargs)``
with nothing else unless ``--kwargs`` says so, evaluated every ``--eval-every`` env steps on a separate env
(10 deterministic episodes, SB3's ``evaluate_policy``). Scores are normalized by the *strong* bundled teacher of the
env: (G - G_random) / (G_strong - G_random), both measured once (10 episodes, ``Teacher.reference_returns``).
Prints one JSON line per run (the curve, the first step at 1.0, the final score) and appends it to ``--out``.

The probes used while choosing (docs/guide/distill_dqn.md, "Which default"): ``--eps-reference EPS`` compares the
student with the teacher playing ε-greedy (as CleanRL's QDagger does), ``--margin M`` lowers the teacher's level by
a share M, ``--rule`` replaces the ``"qdagger"`` weight α by a function of it (``power3``: α³, ``log``: T^(1-α),
``power3floor``: max(α³, 0.01); ``exp<α₁>``: α = α₁^s with s QDagger's score, not clipped, e.g. ``exp0.001``;
``exp``: α₁ = T). The raw records of that search are in ``docs/distill_dqn_defaults.jsonl``.

Examples::

    python scripts/measure_distill_dqn.py --teacher dqn/CartPole-v1 --steps 3000 --eval-every 500 --seeds 0 1 2
    python scripts/measure_distill_dqn.py --teacher dqn/CartPole-v1@weak --steps 30000 --eval-every 5000 \\
        --kwargs '{"recipe": "qdagger"}'
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_distill import DistillDQN, load_teacher


class _Curve(BaseCallback):
    """Evaluates the student every ``every`` env steps (and at step 0) on its own env: the learning curve."""

    def __init__(self, env_id: str, every: int, reference: tuple[float, float]) -> None:
        super().__init__()
        self.env = Monitor(gym.make(env_id))
        self.every = every
        self.random_return, self.strong_return = reference
        self.points: list[tuple[int, float, float]] = []

    def _evaluate(self) -> None:
        self.env.reset(seed=123)
        mean, _ = evaluate_policy(self.model, self.env, n_eval_episodes=10)  # type: ignore[arg-type]
        score = (float(mean) - self.random_return) / (self.strong_return - self.random_return)
        # The distillation weight at this point: how much the teacher still pulls
        self.points.append((self.num_timesteps, round(score, 3), round(self.model.current_distill_coef(), 2)))  # type: ignore[attr-defined]

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self._evaluate()
        return True


class _EpsGreedy:
    """The teacher with the student's ε: its return is what the student's training episodes are compared with."""

    def __init__(self, teacher: Any, epsilon: float, env: gym.Env) -> None:
        self.teacher, self.epsilon, self.env = teacher, epsilon, env

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        actions, _ = self.teacher.predict(observation, deterministic=True)
        if np.random.rand() < self.epsilon:
            actions = np.array([self.env.action_space.sample()])
        return actions, None


def measure(
    teacher_spec: str,
    seed: int,
    steps: int,
    every: int,
    kwargs: dict[str, Any],
    eps_reference: float | None = None,
    margin: float | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """
    :param teacher_spec: a bundled teacher, e.g. ``"dqn/CartPole-v1@weak"``
    :param seed: the student's seed
    :param steps: env steps of the run
    :param every: evaluation period in env steps
    :param kwargs: DistillDQN keywords beyond ``teacher`` and ``seed`` (none: the defaults)
    :return: the run's record
    """
    teacher = load_teacher(teacher_spec)
    strong = load_teacher(teacher_spec.split("@")[0])
    env_id = teacher.env_id
    assert env_id is not None
    reference = strong.reference_returns(env_id)
    if eps_reference is not None:
        env = Monitor(gym.make(env_id))
        env.reset(seed=0)
        np.random.seed(0)
        eps_return, _ = evaluate_policy(_EpsGreedy(teacher, eps_reference, env), env, n_eval_episodes=20)
        kwargs = {**kwargs, "reference_returns": (reference[0], float(eps_return))}
    if margin is not None:
        # The student counts as at the teacher's level from (1 - margin) of it on: α = max(1 - s / (1 - margin), 0)
        random_return, teacher_return = teacher.reference_returns(env_id)
        kwargs = {
            **kwargs,
            "reference_returns": (random_return, random_return + (1 - margin) * (teacher_return - random_return)),
        }
    model = DistillDQN("MlpPolicy", env_id, teacher=teacher, seed=seed, **kwargs)
    if rule is not None:
        # Probe of an annealing rule on QDagger's score s: α = f(1 - α_qdagger)
        qdagger = model._qdagger_coef
        shapes = {
            "power3": lambda a: a**3,
            "log": lambda a: 0.0 if a <= 0 else model.temperature ** (1 - a),
            "power3floor": lambda a: max(a**3, 0.01),
        }

        def exponential() -> float:
            # α = T^s, s not clipped: T at the teacher's level, smaller as the student passes it
            score = model.student_score()
            base = float(rule[3:] or model.temperature)
            return 1.0 if score is None else min(1.0, base ** max(score, 0.0))

        model._qdagger_coef = (  # type: ignore[method-assign]
            exponential if rule.startswith("exp") else lambda: shapes[rule](qdagger())
        )
    curve = _Curve(env_id, every, reference)
    start = time.perf_counter()
    model.learn(steps, callback=curve)
    elapsed = time.perf_counter() - start
    at_one = next((step for step, score, _ in curve.points if score >= 1.0), None)
    return dict(
        teacher=teacher_spec,
        seed=seed,
        kwargs=kwargs,
        rule=rule,
        margin=margin,
        reference=reference,
        steps_to_1=at_one,
        final=curve.points[-1][1],
        curve=curve.points,
        seconds=round(elapsed, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="bundled teacher spec, e.g. dqn/CartPole-v1@weak")
    parser.add_argument("--steps", type=int, required=True, help="env steps per run")
    parser.add_argument("--eval-every", type=int, default=500, help="evaluation period in env steps (default: 500)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="student seeds (default: 0 1 2)")
    parser.add_argument("--kwargs", type=json.loads, default={}, help="DistillDQN keywords as JSON (default: none)")
    parser.add_argument("--eps-reference", type=float, default=None, help="qdagger reference: the teacher with this ε")
    parser.add_argument("--margin", type=float, default=None, help="qdagger reference lowered by this share")
    rules = ["power3", "log", "power3floor", "exp"]
    parser.add_argument("--rule", default=None, help=f"probe: α as a function of QDagger's score ({', '.join(rules)}<α₁>)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/measure_distill_dqn.jsonl"), help="JSON lines appended")
    args = parser.parse_args()
    if args.rule is not None and args.rule not in rules and not re.fullmatch(r"exp[0-9.e-]+", args.rule):
        parser.error(f"--rule {args.rule}: use one of {', '.join(rules)} or exp<α₁> (e.g. exp0.001)")
    th.set_num_threads(1)
    for seed in args.seeds:
        record = measure(
            args.teacher, seed, args.steps, args.eval_every, args.kwargs, args.eps_reference, args.margin, args.rule
        )
        line = json.dumps(record)
        print(line, flush=True)
        with args.out.open("a") as file:
            file.write(line + "\n")


if __name__ == "__main__":
    main()
