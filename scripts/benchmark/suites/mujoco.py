"""
MuJoCo: real rl-zoo3 agents of the public collection (``sac/HalfCheetah-v3``, ``ppo/Walker2d-v3`` from ``--zoo-dir``,
recorded on ``-v3``, run on today's ``-v5`` with the same spaces) → PolicyDistill students of about 2% and 10% of the
teacher's acting network. The anchor of env steps is the teacher's own training budget (``n_timesteps`` of its
``config.yml``): the target is 0.95 of the teacher's return within 2% of it, with at most 5% of its acting parameters.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ..measure import copy_replay_data, interleaved_latencies, latency_calls
from ..report import fmt, table, us
from ..runners import setup_worker
from ..suite import Job, Suite, get_suite

#: Students as a share of the teacher's acting parameters (method name → share); 5% is the size the target allows.
STUDENT_SHARES = {"policy_distill:2%": 0.02, "policy_distill:5%": 0.05, "policy_distill:10%": 0.10}
#: PolicyDistill's settings, written out so that the measurement does not move with the package's defaults: no value
#: distillation (the critic is not needed to act, and skipping it halves the wall time), a DAgger-style teacher share
#: that decays from 1 to 0 over the run (the states the student learns on matter most), a 3× larger learning rate
#: (free in wall time) and one gradient step per env step (MuJoCo steps are cheap next to gradient steps here; the
#: student's own VecNormalize is in ``teacher_env``). docs/benchmarks.md, "MuJoCo", has the probes behind these choices
#: (and Walker2d's: neither a learning rate decaying to 0 nor a floor of 0.2 on the teacher's share held at 5 seeds).
STUDENT_SETTINGS: dict[str, Any] = dict(
    distill_value_coef=0.0, learning_rate=3e-3, gradient_steps=1, batch_size=256, learning_starts=100
)
TEACHER_SHARE = (1.0, 0.0, 1.0)  # LinearSchedule(start, end, end_fraction) of the teacher's share of actions
#: Targets of issue 10: return, acting parameters and env steps (of the teacher's training budget); batch-1024 speed-up.
TARGET_RETURN, TARGET_PARAMS, TARGET_STEPS, TARGET_SPEEDUP = 0.95, 0.05, 0.02, 10.0


def teacher_env(env_id: str, teacher: Any, seed: int, training: bool = True, student: bool = True) -> Any:
    """
    The env as rl-zoo3 built it for the teacher (``Teacher.make_env``: its ``env_wrapper``, e.g. Walker2d's
    ``TimeFeatureWrapper``), Monitor-wrapped, without the teacher's VecNormalize (the Teacher normalizes its own
    inputs), under the student's own ``VecNormalize`` (observations only). Measured (docs/benchmarks.md, "MuJoCo"):
    with raw observations the students ended at 0.72 / 0.80 (HalfCheetah 2% / 10%) and 0.41 (Walker2d 10%) of the
    teacher at 20k env steps; with their own statistics at 0.81 / 0.95 and 0.68 (5 seeds).

    :param env_id: today's gymnasium id (e.g. ``HalfCheetah-v5`` for a ``-v3`` agent: the same spaces)
    :param teacher: the teacher (``None``: the plain env)
    :param seed: seed
    :param training: whether the student's statistics are updated (``False`` for the evaluation env, whose statistics
        the evaluation callback copies from the training env)
    :param student: add the student's ``VecNormalize`` (``False``: the raw env, where the teacher and the random policy
        are measured; with fresh statistics a ``VecNormalize`` would clip the teacher's inputs at ±10)
    :return: a one-env VecEnv
    """
    from stable_baselines3.common.vec_env import VecNormalize

    if teacher is not None:
        env = teacher.make_env(n_envs=1, seed=seed)
    else:
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(env_id, n_envs=1, seed=seed)
    return VecNormalize(env, training=training, norm_reward=False) if student else env


def hidden_width(obs_dim: int, action_dim: int, target_params: float, depth: int = 2) -> int:
    """
    :param obs_dim: observation size
    :param action_dim: action size
    :param target_params: the acting parameters wanted
    :param depth: hidden layers of equal width
    :return: the width whose ``[width] * depth`` MLP + action head is closest to ``target_params``
    """

    def params(width: int) -> int:
        return (obs_dim + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * action_dim

    return min(range(1, 1025), key=lambda width: abs(params(width) - target_params))


def latency_job(suite_ref: tuple[str, dict[str, str]], env_id: str, zoo_dir: str) -> dict[str, Any]:
    """
    Latency and throughput of the teacher's and every student's acting network, timed in turns in one process (their
    ratios hold on a loaded machine where absolute times do not). Students are timed untrained: the time of a forward
    pass does not depend on the weights.

    :param suite_ref: the suite's name and teachers
    :param env_id: gymnasium id
    :param zoo_dir: the teachers' folder
    :return: agent → call → seconds, and the students' sizes
    """
    setup_worker()
    suite = get_suite(*suite_ref)
    teacher = suite.load_teacher(env_id, zoo_dir)
    env = suite.make_env(env_id, teacher, 0)
    sizes = suite.latency_batch_sizes
    with tempfile.TemporaryDirectory() as workdir:
        agents = {
            "teacher": latency_calls(
                teacher, teacher.policy, teacher.obs_normalizer, teacher.observation_space, Path(workdir) / "t", sizes
            )
        }
        for i, method in enumerate(suite.methods):
            model = suite.build_model(method, env_id, env, teacher, 0, {})
            agents[method] = latency_calls(
                model,
                model.policy,
                model.get_vec_normalize_env(),
                model.policy.observation_space,
                Path(workdir) / str(i),
                sizes,
            )
        return dict(env=env_id, latency_s=interleaved_latencies(agents))


class MujocoSuite(Suite):
    name = "mujoco"
    description = "zoo SAC HalfCheetah / PPO Walker2d (--zoo-dir) → PolicyDistill students of ~2%, ~5% and ~10% of the actor"
    envs = ("HalfCheetah-v5", "Walker2d-v5")
    teachers = {"HalfCheetah-v5": "sac/HalfCheetah-v3", "Walker2d-v5": "ppo/Walker2d-v3"}
    methods = {
        "policy_distill:2%": "PolicyDistill, ~2% of the teacher's actor",
        "policy_distill:5%": "PolicyDistill, ~5% of the teacher's actor",
        "policy_distill:10%": "PolicyDistill, ~10% of the teacher's actor",
    }
    budgets = {"full": dict.fromkeys(envs, 20_000), "quick": dict.fromkeys(envs, 5_000)}
    seeds = (5, 1)
    eval_episodes = (5, 2)
    teacher_episodes = 10
    grad_steps = (300, 100)
    latency_batch_sizes = (1, 1024)
    learning_columns = (
        "acting_params", "critic_params", "seeds", "steps_to_0.9_anchor", "steps_to_1.0_anchor", "seeds_at_0.9",
        "seeds_at_1.0", "final", "final_iqm", "return_ratio", "grad_step", "peak_rss",
    )  # fmt: skip
    plot_file = "mujoco.png"
    plot_log_x = False

    def check(self, args: argparse.Namespace) -> None:
        try:
            import mujoco  # noqa: F401
        except ImportError as error:
            raise ImportError(f'The mujoco suite needs MuJoCo: pip install "gymnasium[mujoco]" ({error}).') from error
        if args.zoo_dir is None:
            raise ValueError(
                "The mujoco suite needs --zoo-dir DIR: an rl-zoo3 folder with sac/HalfCheetah-v3_N and ppo/Walker2d-v3_N "
                "(e.g. a clone of rl-baselines3-zoo's rl-trained-agents); no MuJoCo teacher is bundled."
            )
        super().check(args)

    def make_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed)

    def make_eval_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed, training=False)

    def make_reference_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed, student=False)

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        suite_ref = (self.name, settings["teachers"])
        return [Job(latency_job, (suite_ref, env_id, zoo_dir), f"latency {env_id}", "latency") for env_id in args.envs]

    def eval_steps(self, budget: int) -> list[int]:
        # A MuJoCo episode is 1,000 steps: an evaluation every 2,500 steps keeps evaluations a small part of a run.
        return sorted({*range(2_500, budget + 1, 2_500), budget})

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        from stable_baselines3.common.utils import LinearSchedule

        from sb3_distill import PolicyDistill

        obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        width = hidden_width(obs_dim, action_dim, STUDENT_SHARES[method] * teacher.num_parameters)
        return PolicyDistill(
            "MlpPolicy",
            env,
            teacher=teacher,
            data_policy=LinearSchedule(*TEACHER_SHARE),
            policy_kwargs=dict(net_arch=[width, width]),
            seed=seed,
            device="cpu",
            **STUDENT_SETTINGS,
        )

    def gradient_step_reference(self, method: str, model: Any, env: Any, seed: int) -> tuple[str, Any] | None:
        # What training the teacher's kind of agent costs per gradient step: SAC at its zoo size (256×256 actor and
        # twin critics), same batch size, same replay data.
        from stable_baselines3 import SAC
        from stable_baselines3.common.logger import configure

        sac = SAC("MlpPolicy", env, batch_size=model.batch_size, buffer_size=model.buffer_size, seed=seed, device="cpu")
        sac.set_logger(configure(None, []))
        copy_replay_data(model.replay_buffer, sac)
        return "SAC (256×256)", sac

    def report_sections(self, results: dict[str, Any]) -> list[str]:
        lines = ["", "### Latency and throughput of the acting network (CPU, 1 thread)", ""]
        if results.get("latency"):
            lines += [
                "Teacher and students timed in turns in one process (5 turns, median), students untrained (the time of "
                "a forward pass does not depend on the weights). Speed-up = teacher's time / student's.",
                "",
                *self.latency_probe_table(results),
            ]
        else:
            from ..report import latency_table

            lines += ["Each agent timed in its own process (seed 0's run): ratios suffer from a changing load.", ""]
            lines += latency_table(results, self)
        return [*lines, "", "### Targets", "", *self.targets_table(results)]

    def latency_probe_table(self, results: dict[str, Any]) -> list[str]:
        """
        :param results: the content of ``results.json`` with its ``latency`` probes
        :return: one row per env × agent: µs per call at batch 1 and 1024, ONNX throughput, speed-up at 1024
        """
        kinds = ("forward", "torchscript", "onnx")
        header = ["env", "agent", *(f"{k} ×{n}" for n in self.latency_batch_sizes for k in kinds)]
        header += ["ONNX obs/s ×1024", "speed-up ×1024 (eager / TorchScript / ONNX)"]
        rows = []
        for probe in results["latency"]:
            teacher = probe["latency_s"]["teacher"]
            for agent, latency in probe["latency_s"].items():
                cells = [probe["env"], self.methods.get(agent, agent)]
                cells += [
                    fmt(us(latency.get(k + ("" if n == 1 else f"@{n}"))), "{:,.0f} µs", "–")
                    for n in self.latency_batch_sizes
                    for k in kinds
                ]
                cells.append(fmt(latency.get("onnx@1024") and 1024 / latency["onnx@1024"], "{:,.0f}", "–"))
                cells.append(
                    " / ".join(
                        fmt(teacher.get(f"{k}@1024") and teacher[f"{k}@1024"] / latency[f"{k}@1024"], "{:.1f}×", "–")
                        for k in kinds
                    )
                )
                rows.append(cells)
        return table(header, rows)

    @staticmethod
    def speedup(results: dict[str, Any], summary: dict[str, Any]) -> float | None:
        """
        :param results: the content of ``results.json``
        :param summary: a student's summary
        :return: the teacher's eager batch-1024 forward time / the student's (from the interleaved probe if any)
        """
        probe = next((p for p in results.get("latency", []) if p["env"] == summary["env"]), None)
        if probe is not None:
            times = probe["latency_s"]
            return times["teacher"]["forward@1024"] / times[summary["method"]]["forward@1024"]
        ratio = summary.get("latency_forward@1024_ratio")
        return 1 / ratio if ratio else None

    def targets_table(self, results: dict[str, Any]) -> list[str]:
        """
        :param results: the content of ``results.json``
        :return: each student against the targets, with the numbers
        """
        rows = []
        for s in results["summary"]:
            teacher = results["teachers"][s["env"]]
            anchor = teacher.get("training_steps") or 0
            at = int(TARGET_STEPS * anchor)
            runs = [r for r in results["rows"] if r["env"] == s["env"] and r["method"] == s["method"]]
            returns = [next((c["mean_return"] for c in r["curve"] if c["step"] >= at), None) for r in runs]
            ratio = sum(returns) / len(returns) / teacher["teacher_return"] if runs and None not in returns else None
            speedup = self.speedup(results, s)
            small = s["params_ratio"] <= TARGET_PARAMS
            rows.append(
                [
                    s["env"],
                    self.methods.get(s["method"], s["method"]),
                    f"{s['params_ratio']:.1%} ({'≤' if small else '>'} 5%)",
                    f"{at:,}",
                    "–" if ratio is None else f"{ratio:.2f}",
                    "–" if ratio is None or not small else ("met" if ratio >= TARGET_RETURN else "**missed**"),
                    "–" if not speedup else f"{speedup:.1f}×",
                    "–" if not speedup else ("met" if speedup >= TARGET_SPEEDUP else "**missed**"),
                ]
            )
        header = ["env", "student", "acting params", "at env step (2% of teacher's)", "return / teacher's (mean of seeds)"]
        return table([*header, "≥ 0.95 with ≤ 5% params", "forward ×1024 speed-up", "≥ 10×"], rows)


SUITE = MujocoSuite()
