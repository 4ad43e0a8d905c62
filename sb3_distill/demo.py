"""
The main job, end to end: distill a bundled DQN teacher into a small student and compare them.

``python -m sb3_distill demo`` (or ``make demo``). Writes nothing to disk unless ``--save`` is given.
"""

import argparse
import time
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sb3-distill demo", description=__doc__)
    parser.add_argument("--teacher", default="dqn/CartPole-v1", help="teacher spec (default: the bundled CartPole teacher)")
    parser.add_argument("--env", default="CartPole-v1", help="environment id")
    parser.add_argument(
        "--recipe",
        default=None,
        help="auto, policy_distillation, outgrow, reincarnate, qdagger or teacher_td_reverse_kl (default: auto, which "
        "copies a teacher that reaches the env's reward threshold and outgrows one below it)",
    )
    parser.add_argument("--net-arch", type=int, nargs="+", default=[32, 32], help="student hidden layers")
    parser.add_argument("--timesteps", type=int, default=5000, help="env steps for the student (teacher phase included)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="save the student there (refuses to overwrite)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """
    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :return: exit status
    """
    args = parse_args(argv)
    if args.save is not None:
        target = args.save if args.save.suffix else args.save.with_suffix(".zip")
        if target.exists():
            raise SystemExit(f"{target} exists: choose another --save path or delete it first.")

    import gymnasium as gym
    import torch as th
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from sb3_distill import DistillDQN, load_teacher
    from sb3_distill.common.timing import predict_latency
    from sb3_distill.teachers import count_parameters

    th.set_num_threads(1)  # small networks: one thread is fastest and fair to both models
    teacher = load_teacher(args.teacher, env=args.env)
    print(f"Teacher: {teacher} ({teacher.num_parameters:,} parameters)")
    # DistillDQN's own defaults (chosen for distillation, see its docstring): only the teacher, the recipe, the
    # student's size and the seed are set.
    student = DistillDQN(
        "MlpPolicy", args.env, teacher=teacher, recipe=args.recipe, policy_kwargs=dict(net_arch=args.net_arch), seed=args.seed
    )
    start = time.perf_counter()
    student.learn(args.timesteps, progress_bar=False)
    train_time = time.perf_counter() - start
    print(
        f"Student: DistillDQN recipe={student.recipe!r} trained for {student.num_timesteps:,} env steps in {train_time:.1f}s"
    )
    if student.recipe_choice:
        print(f"         {student.recipe_choice}")

    env = Monitor(gym.make(args.env))
    env.reset(seed=args.seed + 1000)
    rows = []
    observation = env.observation_space.sample()
    models: list[tuple[str, Any, int]] = [
        ("teacher", teacher, teacher.num_parameters),
        ("student", student, count_parameters(student.q_net)),
    ]
    for name, model, params in models:
        mean, std = evaluate_policy(model, env, n_eval_episodes=args.eval_episodes, deterministic=True)
        rows.append((name, f"{mean:.1f} ± {std:.1f}", f"{params:,}", f"{predict_latency(model, observation) * 1e6:.0f} µs"))
    teacher_params = teacher.num_parameters
    student_params = count_parameters(student.q_net)
    header = ("", f"return ({args.eval_episodes} episodes)", "parameters", "predict() latency")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"Student size: {student_params / teacher_params:.1%} of the teacher.")
    if args.save is not None:
        student.save(args.save)
        print(f"Saved the student to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
