"""
Measure DistillPPO against PPO from scratch: env steps to the teacher's level and the score along the way.

Both use rl-zoo3's PPO hyperparameters for the env (read by rl-zoo3's own ExperimentManager from its ppo.yml) and the same
network; DistillPPO adds its teacher. Scores are deterministic evaluations (10 episodes on a separate env) every
``--eval-freq`` env steps, teacher-normalized: (G - G_random) / (G_teacher - G_random).

    python -m scripts.measure_distill_ppo --env CartPole-v1 --algo distill_ppo --seeds 0 1 --steps 50000
    python -m scripts.measure_distill_ppo --env CartPole-v1 --algo ppo --seeds 0 1 --steps 100000
    python -m scripts.measure_distill_ppo --env CartPole-v1 --algo distill_ppo --teacher weak-dqn --seeds 0 1

``--teacher weak-dqn`` trains a weak teacher first (SB3 DQN with rl-zoo3's CartPole hyperparameters, stopped after
``--weak-steps`` steps), as the learning tests do.

``--settings defaults`` builds both as a new user would, with nothing but the env id, ``teacher=`` and ``seed=``
(SB3's PPO defaults, DistillPPO's own ``distill_coef="auto"`` and reference returns, one env), which is how issue 20's
"never below PPO from scratch" property is measured:

    python scripts/measure_distill_ppo.py --settings defaults --teacher weak-dqn --algo distill_ppo --seeds 0 1 \
        --steps 30000 --eval-freq 10000 --eval-episodes 20

``--eval-after-update`` evaluates after every PPO update instead (and once more at the end), the protocol of issue 20's
tables in docs/benchmarks.md; ``--kwargs`` passes further keywords to DistillPPO (e.g. to switch its teacher phase off):

    python scripts/measure_distill_ppo.py --settings defaults --teacher dqn/CartPole-v1 --algo distill_ppo \
        --seeds 0 1 2 3 4 --steps 12288 --eval-after-update --eval-episodes 20 --kwargs '{"teacher_rollout_steps": 0}'
"""

import argparse
import json
import tempfile
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from scripts.benchmark.zoo_config import zoo_config

from sb3_distill import DistillPPO, load_teacher
from sb3_distill.teachers import Teacher, reference_returns


TEACHERS = {"CartPole-v1": "dqn/CartPole-v1", "Acrobot-v1": "dqn/Acrobot-v1", "LunarLander-v3": "dqn/LunarLander-v3",
            "Pendulum-v1": "sac/Pendulum-v1"}  # fmt: skip


def weak_dqn_teacher(steps: int, seed: int = 0) -> Teacher:
    """An SB3 DQN with rl-zoo3's CartPole-v1 hyperparameters, stopped after ``steps`` env steps."""
    model = DQN(
        "MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]), seed=seed,
    )  # fmt: skip
    model.learn(steps)
    return load_teacher(model)


def reference(env_id: str, teacher: Teacher, episodes: int = 10) -> tuple[float, float]:
    random_returns, teacher_returns = reference_returns(teacher, Monitor(gym.make(env_id)), episodes, seed=1000)
    return float(np.mean(random_returns)), float(np.mean(teacher_returns))


class EvalAfterUpdate(BaseCallback):
    """Deterministic evaluations after every PPO update and at the end, recorded as EvalCallback records them.

    Each evaluation plays the same episodes: the env is seeded anew with ``seed`` before it.
    """

    def __init__(self, eval_env: Any, n_eval_episodes: int, seed: int) -> None:
        super().__init__()
        self.eval_env, self.n_eval_episodes, self.seed = eval_env, n_eval_episodes, seed
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[list[float]] = []

    def _evaluate(self) -> None:
        self.eval_env.seed(self.seed)
        returns, _ = evaluate_policy(self.model, self.eval_env, self.n_eval_episodes, return_episode_rewards=True)
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append([float(ret) for ret in returns])

    def _on_rollout_start(self) -> None:
        if self.num_timesteps > 0:  # a rollout starts after each update but the first
            self._evaluate()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._evaluate()


def run_defaults(args: argparse.Namespace, seed: int, teacher: Teacher) -> tuple[PPO, Any, float]:
    """PPO or DistillPPO with their defaults (``distill_coef`` and ``--kwargs`` only if given), evaluated on the way."""
    if args.algo == "ppo":
        model: PPO = PPO("MlpPolicy", args.env, seed=seed)
    else:
        coef = {} if args.distill_coef in ("auto", "qdagger") else dict(distill_coef=args.distill_coef)
        model = DistillPPO("MlpPolicy", args.env, teacher=teacher, seed=seed, **coef, **args.kwargs)
    eval_env = make_vec_env(args.env, n_envs=1, seed=seed + 10_000)
    callback: EvalAfterUpdate | EvalCallback
    if args.eval_after_update:
        callback = EvalAfterUpdate(eval_env, args.eval_episodes, seed + 10_000)
    else:
        log_path = tempfile.mkdtemp(prefix="measure_distill_ppo_")
        callback = EvalCallback(eval_env, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes, log_path=log_path)
    start = time.time()
    model.learn(args.steps, callback=callback)
    return model, callback, time.time() - start


def run(args: argparse.Namespace, seed: int, teacher: Teacher | None, refs: tuple[float, float]) -> dict[str, Any]:
    if args.settings == "defaults":
        assert teacher is not None
        model, callback, seconds = run_defaults(args, seed, teacher)
        return summarize(args, seed, callback, refs, seconds, getattr(model, "distill_coef_choice", None))
    config = zoo_config("ppo", args.env)
    settings, normalize, n_envs = config.hyperparams, config.normalize, config.n_envs
    settings.pop("policy", None)
    env = make_vec_env(args.env, n_envs=n_envs, seed=seed)
    eval_env = make_vec_env(args.env, n_envs=1, seed=seed + 10_000)
    if normalize:
        env = VecNormalize(env)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
    policy_kwargs = dict(net_arch=args.net_arch) if args.net_arch else None
    if args.algo == "ppo":
        model: PPO = PPO("MlpPolicy", env, seed=seed, policy_kwargs=policy_kwargs, **settings)
    else:
        if teacher is not None and teacher.policy.squash_output:
            settings.pop("use_sde", None), settings.pop("sde_sample_freq", None)  # a squashed student has no gSDE
        model = DistillPPO(
            "MlpPolicy", env, teacher=teacher, seed=seed, policy_kwargs=policy_kwargs, distill_coef=args.distill_coef,
            reference_returns=refs, **settings,
        )  # fmt: skip
    # EvalCallback records its evaluations only when it has a log_path.
    log_path = tempfile.mkdtemp(prefix="measure_distill_ppo_")
    callback = EvalCallback(
        eval_env, eval_freq=max(args.eval_freq // n_envs, 1), n_eval_episodes=args.eval_episodes, log_path=log_path
    )
    start = time.time()
    model.learn(args.steps, callback=callback)
    return summarize(args, seed, callback, refs, time.time() - start, None)


def summarize(
    args: argparse.Namespace,
    seed: int,
    callback: Any,
    refs: tuple[float, float],
    seconds: float,
    choice: str | None,
) -> dict[str, Any]:
    random_return, teacher_return = refs
    steps = [int(step) for step in callback.evaluations_timesteps]
    means = [float(np.mean(result)) for result in callback.evaluations_results]
    scores = [(mean - random_return) / (teacher_return - random_return) for mean in means]
    reached = next((step for step, score in zip(steps, scores, strict=True) if score >= args.level), None)
    return dict(
        env=args.env, algo=args.algo, teacher=args.teacher, distill_coef=str(args.distill_coef), seed=seed,
        steps=steps, returns=means, scores=scores, steps_to_level=reached, level=args.level,
        final_score=scores[-1] if scores else None, seconds=round(seconds, 1), settings=args.settings,
        distill_coef_choice=choice,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", choices=sorted(TEACHERS))
    parser.add_argument("--algo", default="distill_ppo", choices=["distill_ppo", "ppo"])
    parser.add_argument("--teacher", default=None, help="a load_teacher spec, or weak-dqn (default: the bundled one)")
    parser.add_argument("--weak-steps", type=int, default=6000)
    parser.add_argument("--distill-coef", default="auto")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--eval-freq", type=int, default=2_000)
    parser.add_argument("--level", type=float, default=0.95, help="normalized score counted as the teacher's level")
    parser.add_argument("--net-arch", type=int, nargs="*", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--settings", default="zoo", choices=["zoo", "defaults"], help="rl-zoo3's PPO settings, or SB3's defaults"
    )
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--eval-after-update", action="store_true", help="with --settings defaults: evaluate after every PPO update"
    )
    parser.add_argument("--kwargs", type=json.loads, default={}, help="with --settings defaults: DistillPPO keywords")
    parser.add_argument("--output", default=None, help="append one JSON line per run")
    args = parser.parse_args()
    if args.settings != "defaults" and (args.eval_after_update or args.kwargs):
        parser.error("--eval-after-update and --kwargs go with --settings defaults")
    try:
        args.distill_coef = float(args.distill_coef)
    except ValueError:
        pass
    th.set_num_threads(1)
    args.teacher = args.teacher or TEACHERS[args.env]
    teacher = weak_dqn_teacher(args.weak_steps) if args.teacher == "weak-dqn" else load_teacher(args.teacher)
    refs = reference(args.env, teacher)
    print(f"{args.env}: random {refs[0]:.1f}, teacher {args.teacher} {refs[1]:.1f}", flush=True)
    for seed in args.seeds:
        result = run(args, seed, teacher, refs)
        result["reference_returns"] = refs
        summary = " ".join(
            f"{step // 1000}k:{score:.2f}" for step, score in zip(result["steps"], result["scores"], strict=True)
        )
        returns = " ".join(f"{ret:.0f}" for ret in result["returns"])
        print(f"{args.algo} seed {seed}: to {args.level} at {result['steps_to_level']} steps; {summary}", flush=True)
        print(f"  returns: {returns}" + (f"; {result['distill_coef_choice']}" if result["distill_coef_choice"] else ""))
        if args.output:
            with open(args.output, "a") as file:
                file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
