"""
Single-run probes of PolicyDistill students of the MuJoCo suite's teachers (issue 19): one lever at a time.

    python -m scripts.probe_mujoco teachers --zoo-dir ZOO --out refs.json      # teachers' and random returns, 10 episodes
    python -m scripts.probe_mujoco run --zoo-dir ZOO --refs refs.json --env HalfCheetah-v5 --share 0.05 --seed 0 \
        --set gradient_steps=2 --log probes.jsonl

A run is the suite's (``suites/mujoco.py``: ``teacher_env``, ``STUDENT_SETTINGS``, ``TEACHER_SHARE``, ``[w, w]``
students sized by ``hidden_width``) with the given keywords changed; it evaluates the student every ``--eval-every``
env steps on a separate env reading the training env's statistics (deterministic episodes), and also the
exponential moving averages of its weights given by ``--ema`` (measured in the same run: they do not change what is
trained). One process, one thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

ENVS = {
    "HalfCheetah-v5": "sac/HalfCheetah-v3",
    "Walker2d-v5": "sac/Walker2d-v3",
    "Hopper-v5": "tqc/Hopper-v3",
    "Swimmer-v5": "sac/Swimmer-v3",
    "Walker2d-v5:ppo": "ppo/Walker2d-v3",
}


def load(env_key: str, zoo_dir: str) -> tuple[str, Any]:
    from sb3_distill import load_teacher

    env_id = env_key.split(":")[0]
    return env_id, load_teacher(ENVS[env_key], device="cpu", zoo_dirs=[zoo_dir])


def teachers(args: argparse.Namespace) -> None:
    import numpy as np
    from sb3_distill.teachers import reference_returns

    from scripts.benchmark.suites.mujoco import teacher_env

    out = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for env_key in args.envs:
        env_id, teacher = load(env_key, args.zoo_dir)
        env = teacher_env(env_id, teacher, 0, student=False)
        start = time.time()
        random, returns = reference_returns(teacher, env, 10, 0)
        out[env_key] = dict(
            teacher=ENVS[env_key],
            teacher_return=float(np.mean(returns)),
            teacher_std=float(np.std(returns)),
            teacher_min=float(np.min(returns)),
            random_return=float(np.mean(random)),
            random_std=float(np.std(random)),
            params=teacher.num_parameters,
            obs_dim=int(env.observation_space.shape[0]),
            action_dim=int(env.action_space.shape[0]),
            episodes=10,
            seconds=round(time.time() - start, 1),
        )
        print(env_key, out[env_key], flush=True)
        env.close()
    Path(args.out).write_text(json.dumps(out, indent=1))


def build(args: argparse.Namespace, env_id: str, teacher: Any, env: Any) -> Any:
    import torch as th
    from stable_baselines3.common.utils import LinearSchedule

    from scripts.benchmark.suites.mujoco import STUDENT_SETTINGS, TEACHER_SHARE, add_action_mse, hidden_width
    from sb3_distill import PolicyDistill

    settings: dict[str, Any] = dict(STUDENT_SETTINGS, data_policy=LinearSchedule(*TEACHER_SHARE))
    namespace = dict(LinearSchedule=LinearSchedule, th=th, nn=th.nn)
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = eval(value, namespace)  # the operator's own command line
    policy_kwargs = settings.pop("policy_kwargs", {})
    if "net_arch" not in policy_kwargs:
        obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        width = hidden_width(obs_dim, action_dim, args.share * teacher.num_parameters, args.depth, at_most=args.share == 0.05)
        policy_kwargs["net_arch"] = [width] * args.depth
    if args.mse_coef > 0:
        add_action_mse(args.mse_coef)  # the suite's screening loss (this process only)
    return PolicyDistill(
        "MlpPolicy", env, teacher=teacher, policy_kwargs=policy_kwargs, seed=args.seed, device="cpu", **settings
    )


def evaluate(policy: Any, eval_env: Any, episodes: int) -> float:
    import numpy as np
    from stable_baselines3.common.evaluation import evaluate_policy

    returns, _ = evaluate_policy(policy, eval_env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    return float(np.mean(returns))


def run(args: argparse.Namespace) -> None:
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import sync_envs_normalization

    from scripts.benchmark.suites.mujoco import teacher_env

    th.set_num_threads(1)
    refs = json.loads(Path(args.refs).read_text())[args.env]
    env_id, teacher = load(args.env, args.zoo_dir)
    env = teacher_env(env_id, teacher, args.seed)
    eval_env = teacher_env(env_id, teacher, 10_000 + args.seed, training=False)
    model = build(args, env_id, teacher, env)
    params = sum(p.numel() for p in model.policy.action_net.parameters()) + sum(
        p.numel() for p in model.policy.mlp_extractor.policy_net.parameters()
    )
    emas = {rate: copy.deepcopy(model.policy) for rate in args.ema}

    def norm(value: float) -> float:
        return round((value - refs["random_return"]) / (refs["teacher_return"] - refs["random_return"]), 3)

    curve: list[dict[str, Any]] = []
    start = time.time()

    class Probe(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps > model.learning_starts:
                with th.no_grad():
                    live = list(model.policy.parameters())
                    for rate, ema in emas.items():
                        th._foreach_lerp_(list(ema.parameters()), live, rate)
            if self.num_timesteps % args.eval_every == 0:
                sync_envs_normalization(env, eval_env)
                point: dict[str, Any] = dict(
                    step=self.num_timesteps, score=norm(evaluate(model.policy, eval_env, args.episodes))
                )
                for rate, ema in emas.items():
                    point[f"ema{rate}"] = norm(evaluate(ema, eval_env, args.episodes))
                point["t"] = round(time.time() - start)
                curve.append(point)
                print(point, flush=True)
            return True

    model.learn(args.steps, callback=Probe())
    record = dict(
        env=args.env,
        share=args.share,
        depth=args.depth,
        net_arch=model.policy_kwargs["net_arch"],
        acting_params=params,
        seed=args.seed,
        set=args.set,
        mse_coef=args.mse_coef,
        steps=args.steps,
        episodes=args.episodes,
        curve=curve,
        seconds=round(time.time() - start),
        note=args.note,
        command=" ".join(sys.argv),
    )
    keys = [k for k in curve[-1] if k not in ("step", "t")]
    record["last3"] = {k: round(sum(p[k] for p in curve[-3:]) / 3, 3) for k in keys}
    print(json.dumps(record), flush=True)
    with open(args.log, "a") as log:
        log.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("teachers")
    t.add_argument("--zoo-dir", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--envs", nargs="+", default=list(ENVS))
    r = sub.add_parser("run")
    r.add_argument("--zoo-dir", required=True)
    r.add_argument("--refs", required=True)
    r.add_argument("--env", default="HalfCheetah-v5", choices=list(ENVS))
    r.add_argument("--share", type=float, default=0.05)
    r.add_argument("--depth", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int, default=20_000)
    r.add_argument("--eval-every", type=int, default=2_500)
    r.add_argument("--episodes", type=int, default=5)
    r.add_argument("--ema", type=float, nargs="*", default=[])
    r.add_argument("--mse-coef", type=float, default=0.0)
    r.add_argument("--set", nargs="*", default=[])
    r.add_argument("--note", default="")
    r.add_argument("--log", required=True)
    args = parser.parse_args()
    {"teachers": teachers, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
