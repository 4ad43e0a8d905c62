"""
Classic control: the bundled DQN teachers (256×256; or those of ``--zoo-dir``) → every DistillDQN recipe and
PolicyDistill with a ``[32, 32]`` student (about 2% of the teacher), against SB3's DQN from scratch with rl-zoo3's
hyperparameters (read by rl-zoo3's own ``ExperimentManager`` from its installed ``hyperparams/dqn.yml``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..probes import cost_probe_jobs, cost_probe_sections, plain_dqn_copy
from ..suite import Job, Suite
from ..zoo_config import zoo_config

STUDENT_NET_ARCH = [32, 32]
RECIPES = ("qdagger", "policy_distillation", "teacher_td_reverse_kl")
#: DQN from scratch runs the zoo's own n_timesteps in a full run; capped in ``--quick``.
QUICK_DQN_CAP = 10_000


def student_hyperparams(env_id: str) -> dict[str, Any]:
    """
    Settings shared by every student of ``env_id`` (DistillDQN recipes; PolicyDistill takes the relevant ones).

    The zoo's buffer size, batch size, discount and target-update interval; one gradient step per env step from
    step 100; a constant ε (the zoo's final ε): the teacher, not ε-greedy search, tells the student where to go.

    :param env_id: gymnasium id
    :return: keyword arguments of ``DistillDQN`` (without ``teacher`` and ``recipe``)
    """
    zoo = zoo_config("dqn", env_id).hyperparams
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


class ClassicSuite(Suite):
    name = "classic"
    description = "bundled DQN teachers → DistillDQN recipes and PolicyDistill ([32, 32]) vs DQN from scratch (zoo)"
    envs = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
    teachers = {env_id: f"dqn/{env_id}" for env_id in envs}
    methods = {
        "dqn": "DQN from scratch (zoo, 256×256)",
        "distill_dqn:qdagger": "DistillDQN qdagger",
        "distill_dqn:policy_distillation": "DistillDQN policy_distillation (the default's choice here)",
        "distill_dqn:teacher_td_reverse_kl": "DistillDQN teacher_td_reverse_kl",
        "policy_distill": "PolicyDistill",
    }
    budgets = {
        "full": {"CartPole-v1": 5_000, "Acrobot-v1": 8_000, "MountainCar-v0": 15_000, "LunarLander-v3": 20_000},
        "quick": {"CartPole-v1": 2_500, "Acrobot-v1": 3_000, "MountainCar-v0": 4_000, "LunarLander-v3": 5_000},
    }
    reference_method = "dqn"
    learning_columns = (
        "params", "seeds", "steps_to_0.9", "steps_to_1.0", "steps_ratio", "seeds_at_1.0", "median_seed_steps", "final",
        "final_iqm", "wall_time_ratio", "grad_step_ratio", "supervised_grad_step_ratio", "predict_ratio", "forward_ratio",
        "onnx_us", "peak_rss",
    )  # fmt: skip
    steps_label = "env steps (teacher-phase steps included)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dqn-seeds", type=int, default=None, help="seeds of DQN from scratch (default 3; --quick 1)")

    def n_seeds(self, method: str, args: argparse.Namespace) -> int:
        if method == "dqn":
            return args.dqn_seeds if args.dqn_seeds is not None else (1 if args.quick else 3)
        return super().n_seeds(method, args)

    def budget(self, env_id: str, method: str, args: argparse.Namespace) -> int:
        if method != "dqn":
            return super().budget(env_id, method, args)
        zoo_steps = zoo_config("dqn", env_id).n_timesteps
        return max(int((min(zoo_steps, QUICK_DQN_CAP) if args.quick else zoo_steps) * args.budget_scale), 200)

    def check(self, args: argparse.Namespace) -> None:
        normalized = [env_id for env_id in args.envs if zoo_config("dqn", env_id).normalize]
        if normalized:
            raise ValueError(f"The zoo normalizes DQN on {normalized}: this suite does not handle VecNormalize baselines.")
        super().check(args)

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        students = {env_id: student_hyperparams(env_id) for env_id in args.envs}
        return cost_probe_jobs((self.name, settings["teachers"]), students, list(RECIPES), zoo_dir, settings, args)

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        if method == "dqn":
            from stable_baselines3 import DQN

            return DQN(env=env, seed=seed, device="cpu", **zoo_config("dqn", env_id).hyperparams)
        student = student_hyperparams(env_id)
        if method.startswith("distill_dqn:"):
            from sb3_distill import DistillDQN

            recipe = method.split(":", 1)[1]
            reference_returns = tuple(spec["teacher_returns"])  # QDagger's coefficient: the teacher's own return
            return DistillDQN(
                env=env,
                teacher=teacher,
                recipe=recipe,
                reference_returns=reference_returns,
                seed=seed,
                device="cpu",
                **student,
            )
        from sb3_distill import PolicyDistill

        keys = ("policy", "learning_rate", "buffer_size", "learning_starts", "batch_size", "train_freq", "gradient_steps")
        return PolicyDistill(
            env=env, teacher=teacher, seed=seed, device="cpu", policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)),
            **{key: student[key] for key in keys},
        )  # fmt: skip

    def gradient_step_reference(self, method: str, model: Any, env: Any, seed: int) -> tuple[str, Any] | None:
        return None if method == "dqn" else ("plain DQN", plain_dqn_copy(model, env, seed, STUDENT_NET_ARCH))

    def report_sections(self, results: dict[str, Any]) -> list[str]:
        return cost_probe_sections(results)


SUITE = ClassicSuite()
