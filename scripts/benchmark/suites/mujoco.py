"""
MuJoCo: real rl-zoo3 agents of the public collection (``sac/HalfCheetah-v3``, ``sac/Walker2d-v3``, ``tqc/Hopper-v3``,
``sac/Swimmer-v3`` from ``--zoo-dir``, recorded on ``-v3``, run on today's ``-v5`` with the same spaces) → PolicyDistill
students of 1% to 25% of the teacher's acting network (the size/return frontier). The anchor of env steps is the
teacher's own training budget (``n_timesteps`` of its ``config.yml``): the target is 0.95 of the teacher's return
within 2% of it, with at most 5% of its acting parameters.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from ..measure import copy_replay_data, interleaved_latencies, latency_calls, policy_distill_step_times
from ..report import fmt, table, us
from ..runners import setup_worker
from ..stats import summary_rows
from ..suite import Job, Suite, get_suite

#: Students as a share of the teacher's acting parameters (method name → share); 5% is the size the target allows.
STUDENT_SHARES = {
    "policy_distill:1%": 0.01,
    "policy_distill:2%": 0.02,
    "policy_distill:5%": 0.05,
    "policy_distill:10%": 0.10,
    "policy_distill:25%": 0.25,
}
#: PolicyDistill's settings, written out so that the measurement does not move with the package's defaults: no value
#: distillation (the critic is not needed to act, and skipping it halves the wall time), a DAgger-style teacher share
#: that decays from 1 to 0 over the run (the states the student learns on matter most), a 3× larger learning rate
#: (free in wall time) and one gradient step per env step (MuJoCo steps are cheap next to gradient steps here; the
#: student's own VecNormalize is in ``teacher_env``). docs/benchmarks.md, "MuJoCo", has the probes behind these choices
#: (and Walker2d's: neither a learning rate decaying to 0 nor a floor of 0.2 on the teacher's share held at 5 seeds).
#: Issue 19 added ReLU hidden layers (SB3's actor-critic default is tanh; the SAC teachers use ReLU) and an exponential
#: moving average of the student's weights that acts and is saved (``ema_tau=0.01``): single-seed probes in
#: docs/benchmarks.md, "MuJoCo".
STUDENT_SETTINGS: dict[str, Any] = dict(
    distill_value_coef=0.0, learning_rate=3e-3, gradient_steps=1, batch_size=256, learning_starts=100, ema_tau=0.01
)
STUDENT_ACTIVATION = "ReLU"  # a torch.nn class name
TEACHER_SHARE = (1.0, 0.0, 1.0)  # LinearSchedule(start, end, end_fraction) of the teacher's share of actions
#: Targets of issue 10: return, acting parameters and env steps (of the teacher's training budget); batch-1024 speed-up.
TARGET_RETURN, TARGET_PARAMS, TARGET_STEPS, TARGET_SPEEDUP = 0.95, 0.05, 0.02, 10.0
FRONTIER_PLOT = "mujoco-frontier.png"


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


def student_share(method: str) -> float:
    """
    :param method: a key of :data:`STUDENT_SHARES`, or ``"policy_distill:<P>%"`` for another share (the robustness
        suite's HalfCheetah students, up to the teacher's size)
    :return: the student's share of the teacher's acting parameters
    """
    if method in STUDENT_SHARES:
        return STUDENT_SHARES[method]
    name, _, percent = method.partition(":")
    try:
        share = float(percent.removesuffix("%")) / 100
    except ValueError:
        share = math.nan
    if name != "policy_distill" or not percent.endswith("%") or not 0 < share <= 1:
        raise ValueError(f"Unknown student {method!r}: use policy_distill:<P>% with 0 < P <= 100, e.g. policy_distill:25%.")
    return share


def student_settings(changes: list[str]) -> dict[str, Any]:
    """
    :param changes: ``KEY=VALUE`` items of ``--student-set`` (VALUE a Python expression; ``LinearSchedule`` known)
    :return: the students' PolicyDistill keywords with the changes, plus ``depth``, ``activation`` (a ``torch.nn``
        class name), ``teacher_share`` (the ``LinearSchedule`` arguments of the teacher's share) and ``mse_coef``
        (:func:`add_action_mse`)
    """
    import inspect

    import torch as th
    from stable_baselines3.common.utils import LinearSchedule

    from sb3_distill import PolicyDistill

    suite_keys = dict(depth=2, activation=STUDENT_ACTIVATION, teacher_share=TEACHER_SHARE, mse_coef=0.0)
    settings: dict[str, Any] = dict(STUDENT_SETTINGS, **suite_keys)
    for item in changes:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--student-set {item!r}: write KEY=VALUE, e.g. gradient_steps=2 or activation=ELU.")
        if key == "activation":
            if not isinstance(getattr(th.nn, value, None), type):
                raise ValueError(f"--student-set {item!r}: {value!r} is not a torch.nn class (e.g. ReLU, Tanh, ELU).")
            settings[key] = value
        elif key not in settings and key not in inspect.signature(PolicyDistill).parameters:
            raise ValueError(f"--student-set {item!r}: {key} is neither a PolicyDistill keyword nor one of the suite's.")
        else:
            try:
                settings[key] = eval(value, {"LinearSchedule": LinearSchedule, "__builtins__": {}})  # the operator's line
            except Exception as error:
                raise ValueError(f"--student-set {item!r}: {value!r} is not a Python value ({error}).") from error
    return settings


def add_action_mse(coef: float) -> None:
    """
    Screening only (``--student-set mse_coef=C``; each run is its own process): PolicyDistill's Gaussian KL term of a
    squashing student gets ``C`` · the mean squared error between the student's and the teacher's deterministic
    actions (tanh of the pre-tanh means), which is what the evaluation plays.

    :param coef: C
    """
    import torch as th

    from sb3_distill.policy_distill import policy_distill

    kl_term = policy_distill.policy_term

    def kl_plus_mse(term: Any, student: Any, targets: Any, direction: Any, squashes: bool, space: Any) -> Any:
        loss, agreement = kl_term(term, student, targets, direction, squashes, space)
        if term.distill_loss == "kl" and squashes and not term.teacher.is_discrete:
            mean = student.distribution.loc
            loss = loss + coef * th.nn.functional.mse_loss(th.tanh(mean), th.tanh(targets.mean))
        return loss, agreement

    policy_distill.policy_term = kl_plus_mse  # type: ignore[assignment]


def hidden_width(obs_dim: int, action_dim: int, target_params: float, depth: int = 2, at_most: bool = False) -> int:
    """
    :param obs_dim: observation size
    :param action_dim: action size
    :param target_params: the acting parameters wanted
    :param depth: hidden layers of equal width
    :param at_most: the widest net with at most ``target_params`` (a size limit) rather than the closest
    :return: the width whose ``[width] * depth`` MLP + action head is closest to ``target_params``
    """

    def params(width: int) -> int:
        return (obs_dim + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * action_dim

    if at_most:
        return max([1, *(width for width in range(1, 1025) if params(width) <= target_params)])
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


#: The student whose gradient step is timed against a plain supervised step, env steps played before timing.
STEP_TIME_STUDENT, STEP_TIME_FILL = "policy_distill:5%", 5_000


def step_time_job(suite_ref: tuple[str, dict[str, str]], env_id: str, zoo_dir: str, n_steps: int) -> dict[str, Any]:
    """
    Gradient-step time of the suite's 5% student with its teacher-output cache and with its teacher labelling each
    batch, against a plain supervised step of the same student (:func:`~scripts.benchmark.measure.policy_distill_step_times`:
    one process, interleaved, same replay data), with one new transition per step and on a fixed buffer.

    :param suite_ref: the suite's name and teachers
    :param env_id: gymnasium id
    :param zoo_dir: the teachers' folder
    :param n_steps: timed gradient steps per variant and set-up
    :return: the probe's record
    """
    setup_worker()
    suite = get_suite(*suite_ref)
    teacher = suite.load_teacher(env_id, zoo_dir)

    def make_model(cache: bool) -> Any:
        model = suite.build_model(STEP_TIME_STUDENT, env_id, suite.make_env(env_id, teacher, 0), teacher, 0, {})
        model.cache_teacher_outputs, model.learning_starts = cache, STEP_TIME_FILL + 1
        return model

    # CPU time of this process (one torch thread): the shared machine's load does not stretch it
    times = policy_distill_step_times(make_model, STEP_TIME_FILL, n_steps, clock=time.process_time)
    return dict(env=env_id, method=STEP_TIME_STUDENT, fill=STEP_TIME_FILL, n_steps=n_steps, times=times, clock="process_time")


class MujocoSuite(Suite):
    name = "mujoco"
    description = (
        "zoo SAC HalfCheetah / SAC Walker2d / TQC Hopper / SAC Swimmer (--zoo-dir) → PolicyDistill students of ~1% to "
        "~25% of the actor"
    )
    envs = ("HalfCheetah-v5", "Walker2d-v5", "Hopper-v5", "Swimmer-v5")
    #: The collection's SAC / TQC agents (73k / 70k / 69k acting parameters). ``ppo/Walker2d-v3`` (5,766: a 5% student
    #: has 278) was the earlier Walker2d teacher: ``--teacher Walker2d-v5=ppo/Walker2d-v3`` still runs it.
    teachers = {
        "HalfCheetah-v5": "sac/HalfCheetah-v3",
        "Walker2d-v5": "sac/Walker2d-v3",
        "Hopper-v5": "tqc/Hopper-v3",
        "Swimmer-v5": "sac/Swimmer-v3",
    }
    methods = {method: f"PolicyDistill, ~{method.split(':')[1]} of the teacher's actor" for method in STUDENT_SHARES}
    budgets = {"full": dict.fromkeys(envs, 20_000), "quick": dict.fromkeys(envs, 5_000)}
    seeds = (5, 1)
    eval_episodes = (5, 2)
    teacher_episodes = 10
    grad_steps = (300, 100)
    latency_batch_sizes = (1, 1024)
    learning_columns = (
        "acting_params", "critic_params", "seeds", "budget_anchor", "steps_to_0.9_anchor", "steps_to_1.0_anchor",
        "seeds_at_0.9", "seeds_at_1.0", "final", "final_iqm", "return_ratio", "grad_step", "supervised_grad_step_ratio",
        "peak_rss",
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
                "The mujoco suite needs --zoo-dir DIR: an rl-zoo3 folder with sac/HalfCheetah-v3_N, sac/Walker2d-v3_N, "
                "tqc/Hopper-v3_N and sac/Swimmer-v3_N "
                "(e.g. a clone of rl-baselines3-zoo's rl-trained-agents); no MuJoCo teacher is bundled."
            )
        super().check(args)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--student-set",
            nargs="+",
            default=[],
            metavar="KEY=VALUE",
            help="change one of the students' settings (to screen a lever): a PolicyDistill keyword (a Python "
            "expression: gradient_steps=2, batch_size=1024, learning_rate=LinearSchedule(3e-3, 3e-4, 1.0), "
            "distill_loss='mse'), mse_coef=1.0 (screening: KL + 1.0 x the MSE of the squashed mean actions), "
            "activation=ELU (a torch.nn class), depth=3 (hidden layers, width re-sized to the same share) or "
            "teacher_share=(1.0, 0.0, 0.5) (LinearSchedule of the teacher's share); recorded in results.json",
        )

    def plan(self, args: argparse.Namespace) -> dict[str, Any]:
        for item in args.student_set:
            student_settings([item])  # a bad setting fails here, before any teacher is measured
        return dict(super().plan(args), student_set=list(args.student_set))

    def make_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed)

    def make_eval_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed, training=False)

    def make_reference_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return teacher_env(env_id, teacher, seed, student=False)

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        suite_ref = (self.name, settings["teachers"])
        jobs = [Job(latency_job, (suite_ref, env_id, zoo_dir), f"latency {env_id}", "latency") for env_id in args.envs]
        if settings["grad_steps"] > 0:
            for env_id in args.envs:
                step_args = (suite_ref, env_id, zoo_dir, settings["grad_steps"])
                jobs.append(Job(step_time_job, step_args, f"gradient step {env_id}", "gradient_profile"))
        return jobs

    def eval_steps(self, budget: int) -> list[int]:
        # A MuJoCo episode is 1,000 steps: an evaluation every 2,500 steps keeps evaluations a small part of a run.
        return sorted({*range(2_500, budget + 1, 2_500), budget})

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        import numpy as np
        import torch as th
        from stable_baselines3.common.utils import LinearSchedule

        from sb3_distill import PolicyDistill

        # Flattened: a frame-stacked student (the robustness suite's) sees frames × the state
        obs_dim, action_dim = int(np.prod(env.observation_space.shape)), env.action_space.shape[0]
        share = student_share(method)
        settings = student_settings(spec.get("settings", {}).get("student_set", []))
        depth, activation = settings.pop("depth"), settings.pop("activation")
        mse_coef = settings.pop("mse_coef")
        if mse_coef:
            add_action_mse(mse_coef)
        # The target's 5% is a limit: that student is the widest within it (Hopper's closest, [52, 52], has 5.03%).
        width = hidden_width(obs_dim, action_dim, share * teacher.num_parameters, depth, at_most=share == TARGET_PARAMS)
        return PolicyDistill(
            "MlpPolicy",
            env,
            teacher=teacher,
            data_policy=LinearSchedule(*settings.pop("teacher_share")),
            policy_kwargs=dict(net_arch=[width] * depth, activation_fn=getattr(th.nn, activation)),
            seed=seed,
            device="cpu",
            **settings,
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
        if results.get("gradient_profile"):
            lines += ["", "### Gradient step: PolicyDistill vs a plain supervised step", ""]
            lines += [*self.step_time_table(results)]
        lines += ["", "### Frontier: teacher-normalized score against acting parameters", ""]
        lines += [
            "Final = the last evaluation (at the budget), last 3 = mean of the last three evaluations; mean over seeds "
            f"(± std). Plot: `{FRONTIER_PLOT}`.",
            "",
            *self.frontier_table(results),
        ]
        return [*lines, "", "### Targets", "", *self.targets_table(results)]

    @staticmethod
    def last_scores(row: dict[str, Any], key: str = "normalized_score") -> tuple[float, float]:
        """
        :param row: one run
        :param key: ``normalized_score`` or ``mean_return``
        :return: its last evaluation and the mean of its last three
        """
        values = [record[key] for record in row["curve"]]
        return values[-1], sum(values[-3:]) / len(values[-3:])

    def frontier_points(self, results: dict[str, Any]) -> list[dict[str, Any]]:
        """
        :param results: the content of ``results.json``
        :return: one point per env × student × budget: acting parameters, share of the teacher's, final and last-3
            scores
        """
        import numpy as np

        points = []
        for s in results["summary"]:
            runs = summary_rows(results, s)
            finals, last3 = zip(*(self.last_scores(r) for r in runs), strict=True)
            points.append(
                dict(
                    env=s["env"],
                    method=s["method"],
                    params=runs[0]["params"],
                    share=s["params_ratio"],
                    seeds=sorted(r["seed"] for r in runs),
                    budget=s["budget"],
                    final=float(np.mean(finals)),
                    final_std=float(np.std(finals)),
                    final_min=float(np.min(finals)),
                    final_max=float(np.max(finals)),
                    last3=float(np.mean(last3)),
                )
            )
        return sorted(points, key=lambda p: (list(results["teachers"]).index(p["env"]), p["params"], p["budget"]))

    def frontier_table(self, results: dict[str, Any]) -> list[str]:
        """
        :param results: the content of ``results.json``
        :return: per env, its students by size, and the smallest at ≥ 0.95 (final and last 3)
        """
        rows = []
        for p in self.frontier_points(results):
            reached = p["final"] >= TARGET_RETURN and p["last3"] >= TARGET_RETURN
            rows.append(
                [
                    p["env"],
                    f"{p['params']:,} ({p['share']:.1%})",
                    ", ".join(map(str, p["seeds"])),
                    f"{p['budget']:,}",
                    f"{p['final']:.2f} ± {p['final_std']:.2f}",
                    f"{p['last3']:.2f}",
                    "yes" if reached else "no",
                ]
            )
        header = ["env", "acting params (of teacher's)", "seeds", "env steps", "final", "last 3", "≥ 0.95 (both)"]
        return table(header, rows)

    def extra_plots(self, results: dict[str, Any], out: Path) -> None:
        import math

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        points = self.frontier_points(results)
        if not points:
            return
        envs = [env_id for env_id in results["teachers"] if any(p["env"] == env_id for p in points)]
        columns = min(2, len(envs))
        rows_count = math.ceil(len(envs) / columns)
        figure, axes = plt.subplots(rows_count, columns, figsize=(6 * columns, 3.8 * rows_count), squeeze=False)
        budgets = sorted({p["budget"] for p in points})
        colors = {budget: plt.get_cmap("tab10")(i) for i, budget in enumerate(budgets)}
        for axis, env_id in zip(axes.flat, envs, strict=False):
            mine = [p for p in points if p["env"] == env_id]
            for budget in budgets:  # one series per budget (env steps of the runs)
                cell = [p for p in mine if p["budget"] == budget]
                if not cell:
                    continue
                x, y, color = [p["params"] for p in cell], [p["final"] for p in cell], colors[budget]
                error = [[p["final"] - p["final_min"] for p in cell], [p["final_max"] - p["final"] for p in cell]]
                steps = f"{budget:,} env steps"
                axis.errorbar(x, y, yerr=error, marker="o", capsize=3, color=color, label=f"{steps}: final (mean, min–max)")
                axis.plot(x, [p["last3"] for p in cell], marker="x", linestyle=":", color=color,
                          label=f"{steps}: mean of the last 3 evaluations")  # fmt: skip
                for p in cell:
                    axis.annotate(f"{p['share']:.0%}, {len(p['seeds'])} s.", (p["params"], p["final"]), fontsize=7,
                                  textcoords="offset points", xytext=(4, -10 if budget == budgets[0] else 6),
                                  color=color)  # fmt: skip
            teacher_params = results["teachers"][env_id]["params"]
            axis.axhline(TARGET_RETURN, color="black", linestyle="--", linewidth=1, label=f"target {TARGET_RETURN}")
            axis.axvline(
                TARGET_PARAMS * teacher_params, color="grey", linestyle=":", linewidth=1, label="5% of the teacher's actor"
            )
            axis.set_xscale("log")
            axis.set_xlim(0.007 * teacher_params, 0.35 * teacher_params)
            axis.set_ylim(min(0.5, min(p["final_min"] for p in mine) - 0.05), 1.15)
            axis.set_title(f"{env_id} (teacher: {teacher_params:,} acting parameters)", fontsize=9)
            axis.set_xlabel("student's acting parameters")
            axis.set_ylabel("teacher-normalized score")
            axis.grid(alpha=0.3, which="both")
        for axis in list(axes.flat)[len(envs) :]:
            axis.axis("off")
        legend: dict[str, Any] = {}  # every panel's entries once (a budget may be run on some envs only)
        for axis in axes.flat:
            for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        handles, labels = list(legend.values()), list(legend)
        figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
        figure.suptitle("Size/return frontier at the budget (s. = seeds)", fontsize=10)
        figure.tight_layout(rect=(0, 0.03 + 0.03 * math.ceil(len(labels) / 3), 1, 0.97))
        figure.savefig(out / FRONTIER_PLOT, dpi=110)
        plt.close(figure)

    @staticmethod
    def step_time_table(results: dict[str, Any]) -> list[str]:
        """
        :param results: the content of ``results.json`` with its ``gradient_profile`` probes
        :return: µs per gradient step and the ratio to the plain supervised step, per env, variant and set-up
        """
        lines = [
            "CPU time per gradient step (one torch thread) of the 5% student after 5,000 env steps, its three variants "
            "timed in turns in one process on the same replay "
            "data: PolicyDistill with the teacher-output cache (the default), with the teacher labelling each batch, and "
            "a plain supervised step of the same student (behaviour cloning of the stored actions, same network, "
            "optimizer, batch and input normalization). *+1 transition*: one new transition per gradient step (the "
            "suite's training set-up: the cache labels it); *fixed buffer*: gradient steps only.",
            "",
        ]
        rows = []
        for probe in results["gradient_profile"]:
            for variant in next(iter(probe["times"].values())):
                cells = [probe["env"], variant]
                for setup in ("+1 transition", "fixed buffer"):
                    entry = probe["times"][setup][variant]
                    cells.append(f"{entry['seconds'] * 1e6:,.0f} µs ({entry['ratio']:.2f}×)")
                rows.append(cells)
        return lines + table(["env", "variant", "+1 transition", "fixed buffer"], rows)

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
            if s["budget"] > at:
                continue  # beyond the target's budget (e.g. --budget-scale 2.5): in the frontier table, not judged here
            runs = summary_rows(results, s)
            returns = [next((c["mean_return"] for c in r["curve"] if c["step"] >= at), None) for r in runs]
            ratio = sum(returns) / len(returns) / teacher["teacher_return"] if runs and None not in returns else None
            last3 = [self.last_scores(r, "mean_return")[1] for r in runs if r["budget"] == at]
            ratio3 = sum(last3) / len(last3) / teacher["teacher_return"] if last3 and len(last3) == len(runs) else None
            both = None if ratio is None else min(ratio, ratio3 if ratio3 is not None else ratio)
            speedup = self.speedup(results, s)
            small = s["params_ratio"] <= TARGET_PARAMS
            rows.append(
                [
                    s["env"],
                    self.methods.get(s["method"], s["method"]),
                    f"{s['params_ratio']:.1%} ({'≤' if small else '>'} 5%)",
                    f"{at:,}",
                    "–" if ratio is None else f"{ratio:.2f}",
                    "–" if ratio3 is None else f"{ratio3:.2f}",
                    ", ".join(str(r["seed"]) for r in runs),
                    "–" if both is None or not small else ("met" if both >= TARGET_RETURN else "**missed**"),
                    "–" if not speedup else f"{speedup:.1f}×",
                    "–" if not speedup else ("met" if speedup >= TARGET_SPEEDUP else "**missed**"),
                ]
            )
        header = ["env", "student", "acting params", "at env step (2% of teacher's)", "return / teacher's (mean of seeds)"]
        header += ["mean of the last 3 evaluations / teacher's", "seeds", "≥ 0.95 (both) with ≤ 5% params"]
        return table([*header, "forward ×1024 speed-up", "≥ 10×"], rows)


SUITE = MujocoSuite()
