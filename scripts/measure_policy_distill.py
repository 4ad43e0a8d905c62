"""
Measure PolicyDistill's settings: env steps to the teacher's level with nothing but the given keywords.

The student is built on the teacher's own env (``Teacher.make_env``) with ``PolicyDistill("MlpPolicy", env,
teacher=..., seed=..., **settings)``; every other keyword is PolicyDistill's default. A separate env (seeded once)
evaluates it with 10 deterministic episodes at the classic suite's points (every 500 env steps up to 5k, every
2,500 up to 20k, then every 5k). Scores are teacher-normalized: (G - G_random) / (G_teacher - G_random), the
teacher's and the random policy's returns measured once over 30 episodes.

    OMP_NUM_THREADS=1 python scripts/measure_policy_distill.py --env CartPole-v1 --seeds 0 1 2 --steps 3000
    OMP_NUM_THREADS=1 python scripts/measure_policy_distill.py --env LunarLander-v3 --seeds 0 1 2 --steps 10000 \\
        --set gradient_steps=4 --set "data_policy=LinearSchedule(1.0, 0.0, 0.5)"
    OMP_NUM_THREADS=1 python scripts/measure_policy_distill.py --env HalfCheetah-v5 --teacher sac/HalfCheetah-v3 \\
        --zoo-dir tests/data/zoo --seeds 0 --steps 10000 --eval-points 10000

``--set key=value`` takes a Python literal or an SB3 ``LinearSchedule(...)``; ``--output`` appends one JSON line per run.
"""

import argparse
import ast
import json
import time
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule

from sb3_distill import PolicyDistill, load_teacher
from sb3_distill.teachers import Teacher, reference_returns

TEACHERS = {"CartPole-v1": "dqn/CartPole-v1", "Acrobot-v1": "dqn/Acrobot-v1", "MountainCar-v0": "dqn/MountainCar-v0",
            "LunarLander-v3": "dqn/LunarLander-v3", "Pendulum-v1": "sac/Pendulum-v1"}  # fmt: skip


def eval_points(budget: int) -> list[int]:
    """The classic suite's evaluation steps up to ``budget``."""
    points = [*range(500, 5_001, 500), *range(7_500, 20_001, 2_500), *range(25_000, budget + 1, 5_000)]
    return [point for point in points if point <= budget]


def parse_setting(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    if value.startswith("LinearSchedule("):
        return key, LinearSchedule(*ast.literal_eval(value[len("LinearSchedule") :]))
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


class Evaluate(BaseCallback):
    """Deterministic evaluations at fixed env steps; the time they take is not counted as training time."""

    def __init__(self, eval_env: Any, points: list[int], n_episodes: int) -> None:
        super().__init__()
        self.eval_env, self.points, self.n_episodes = eval_env, list(points), n_episodes
        self.steps: list[int] = []
        self.returns: list[float] = []
        self.eval_seconds = 0.0

    def _on_step(self) -> bool:
        if self.points and self.num_timesteps >= self.points[0]:
            self.points.pop(0)
            start = time.time()
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True)
            self.eval_seconds += time.time() - start
            self.steps.append(self.num_timesteps)
            self.returns.append(float(mean))
        return True


def run(args: argparse.Namespace, teacher: Teacher, settings: dict[str, Any], seed: int, refs: tuple[float, float]) -> dict:
    env = teacher.make_env(seed=seed)
    eval_env = teacher.make_env(seed=seed + 10_000)
    model = PolicyDistill("MlpPolicy", env, teacher=teacher, seed=seed, device="cpu", **settings)
    callback = Evaluate(eval_env, args.eval_points or eval_points(args.steps), args.episodes)
    start = time.time()
    model.learn(args.steps, callback=callback)
    seconds = time.time() - start - callback.eval_seconds
    random_return, teacher_return = refs
    scores = [(value - random_return) / (teacher_return - random_return) for value in callback.returns]
    reached = next((step for step, score in zip(callback.steps, scores, strict=True) if score >= args.level), None)
    return dict(
        env=args.env, teacher=args.teacher, settings=args.set, seed=seed, steps=callback.steps, returns=callback.returns,
        scores=scores, steps_to_level=reached, level=args.level, final_score=scores[-1] if scores else None,
        train_seconds=round(seconds, 1),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--teacher", default=None, help="a load_teacher spec (default: the bundled teacher of --env)")
    parser.add_argument("--zoo-dir", default=None)
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--eval-points", type=int, nargs="*", default=None)
    parser.add_argument("--episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--reference-episodes", type=int, default=30)
    parser.add_argument("--level", type=float, default=1.0, help="normalized score counted as the teacher's level")
    parser.add_argument("--set", action="append", default=[], help="a PolicyDistill keyword, key=value")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", default=None, help="append one JSON line per run")
    args = parser.parse_args()
    th.set_num_threads(1)
    args.teacher = args.teacher or TEACHERS[args.env]
    teacher = load_teacher(args.teacher, zoo_dirs=[args.zoo_dir] if args.zoo_dir else None)
    settings = dict(parse_setting(text) for text in args.set)
    random_returns, teacher_returns = reference_returns(teacher, teacher.make_env(), args.reference_episodes, seed=1_000)
    refs = float(np.mean(random_returns)), float(np.mean(teacher_returns))
    print(f"{args.env}: random {refs[0]:.1f}, teacher {args.teacher} {refs[1]:.1f}; settings {args.set}", flush=True)
    reached = []
    for seed in args.seeds:
        result = run(args, teacher, settings, seed, refs)
        result["reference_returns"] = refs
        reached.append(result["steps_to_level"])
        summary = " ".join(f"{step}:{score:.2f}" for step, score in zip(result["steps"], result["scores"], strict=True))
        print(f"seed {seed}: {args.level} at {result['steps_to_level']} ({result['train_seconds']} s); {summary}", flush=True)
        if args.output:
            with open(args.output, "a") as file:
                file.write(json.dumps(result) + "\n")
    print(f"steps to {args.level} per seed: {reached}", flush=True)


if __name__ == "__main__":
    main()
