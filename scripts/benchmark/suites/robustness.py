"""
Robustness (issue 21): teachers and their distilled students under observation noise, adversarial observations and
shifted dynamics, measured with ``sb3_distill.robustness.evaluate_robustness``. Classic control: the bundled DQN
teachers and a ``[32, 32]`` DistillDQN student with its defaults (the issue's set-up), trained for the classic suite's
budgets. HalfCheetah: the zoo's SAC teacher alone (``--zoo-dir``, default the repository's ``tests/data/zoo``);
``--halfcheetah-student`` adds the MuJoCo suite's ~10% PolicyDistill student (its own VecNormalize, 20k env steps).
The teachers' robustness jobs run first: an interrupted run keeps them.

``--parts`` adds the students for the real world (:mod:`._real_world`): sim-to-real (``--shifts``), privileged
students without velocities, students trained on noisy observations, a student of several dynamics-teachers, and a
HalfCheetah student under observation noise; ``--parts sim_to_real`` alone runs only those (and the teachers' records).

Scores are normalized by the teacher's *nominal* return: (G − G_random) / (G_teacher − G_random). A grid's score is the
mean normalized return over all its (perturbation, level) points, the nominal levels included.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..report import table
from . import _real_world as real_world
from ..suite import Job, Suite, get_suite

CLASSIC = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
STUDENT_NET_ARCH = [32, 32]
REPOSITORY_ZOO = Path(__file__).resolve().parents[3] / "tests" / "data" / "zoo"
#: Relative observation noise (σ in units of each observation's scale, ``observation_scale(method="auto")``).
NOISE = ("obs_noise", (0.0, 0.05, 0.1, 0.2, 0.3), {})
#: FGSM in an L∞ ball (radius in units of each observation's scale).
FGSM = ("fgsm", (0.0, 0.02, 0.05, 0.1, 0.2), {})

#: env → grid → probes ``(perturbation, levels, evaluate_robustness keywords)``.
GRIDS: dict[str, dict[str, list[tuple[str, tuple[float, ...], dict[str, Any]]]]] = {
    "CartPole-v1": {
        "noise": [NOISE, ("obs_noise", (0.1, 0.3), {"scale": 1.0})],  # the absolute σ = 0.1, 0.3
        "adversarial": [FGSM],
        "dynamics": [
            ("dynamics:length", (0.5, 1.0, 2.0, 3.0), {}),
            ("dynamics:masspole", (1.0, 3.0, 10.0), {}),
            ("dynamics:force_mag", (0.5, 0.75, 1.0, 1.5), {}),
        ],
    },
    "Acrobot-v1": {
        "noise": [NOISE],
        "adversarial": [FGSM],
        "dynamics": [
            ("dynamics:LINK_MASS_2", (0.5, 1.0, 1.5, 2.0), {}),
            ("dynamics:LINK_LENGTH_1", (0.75, 1.0, 1.25, 1.5), {}),
        ],
    },
    "MountainCar-v0": {
        "noise": [NOISE],
        "adversarial": [FGSM],
        "dynamics": [("dynamics:force", (0.8, 0.9, 1.0, 1.25), {}), ("dynamics:gravity", (0.8, 1.0, 1.1, 1.25), {})],
    },
    "LunarLander-v3": {
        "noise": [NOISE],
        "adversarial": [FGSM],
        "dynamics": [
            ("gravity", (-11.5, -10.0, -8.0, -6.0), {}),
            ("wind_power", (0.0, 5.0, 10.0, 15.0, 20.0), {}),
            ("turbulence_power", (0.0, 0.5, 1.0, 1.5, 2.0), {}),
        ],
    },
    "HalfCheetah-v5": {
        "noise": [NOISE, ("obs_noise", (0.1, 0.3), {"scale": 1.0})],  # the absolute σ = 0.1, 0.3
        "dynamics": [
            ("dynamics:mass:torso", (0.5, 1.0, 1.5, 2.0, 3.0), {}),
            ("dynamics:friction", (0.5, 1.0, 2.0), {}),
            ("dynamics:actuator_gain", (0.5, 0.75, 1.0, 1.25), {}),
        ],
    },
}


def _share(text: str) -> float:
    """``--student-share``: a share of the teacher's acting parameters in (0, 1]."""
    try:
        share = float(text)
    except ValueError:
        share = float("nan")
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in (0, 1], e.g. 0.25 or 1")
    return share


def _ema_tau(text: str) -> float:
    """``--ema-tau``: DistillDQN's ``ema_tau`` in (0, 1], or 0 for none."""
    try:
        tau = float(text)
    except ValueError:
        tau = float("nan")
    if not 0 <= tau <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ema_tau in (0, 1] (or 0: no average), e.g. 0.01")
    return tau


def _subset(parser: argparse.ArgumentParser, flag: str, choices: Any, help: str) -> None:
    """An option taking some of ``choices`` (default: all of them)."""
    parser.add_argument(flag, nargs="+", default=list(choices), choices=list(choices), help=help)


def probe_name(perturbation: str, options: dict[str, Any]) -> str:
    """
    :param perturbation: a perturbation name
    :param options: its ``evaluate_robustness`` keywords
    :return: its label in the tables
    """
    return perturbation + (" (absolute)" if options.get("scale") == 1.0 else "")


def robustness_rows(
    agent: Any, env_id: str, n_episodes: int, seed: int = 0, grids: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """
    :param agent: a model or a teacher
    :param env_id: gymnasium id (a key of :data:`GRIDS`)
    :param n_episodes: episodes per level
    :param seed: seed of the envs and perturbations
    :param grids: the grids to measure (default: all of the env's)
    :return: every (grid, perturbation, level) row of ``evaluate_robustness``, without the per-episode returns
    """
    from sb3_distill.robustness import evaluate_robustness

    rows = []
    for grid, probes in GRIDS[env_id].items():
        if grids is not None and grid not in grids:
            continue
        for perturbation, levels, options in probes:
            for row in evaluate_robustness(agent, env_id, perturbation, list(levels), n_episodes, seed, **options):
                row.pop("returns")
                rows.append(dict(row, grid=grid, probe=probe_name(perturbation, options)))
    return rows


def teacher_robustness_job(
    suite_ref: tuple[str, dict[str, str]], env_id: str, zoo_dir: str, n_episodes: int
) -> dict[str, Any]:
    """
    :param suite_ref: the suite's name and teachers
    :param env_id: gymnasium id
    :param zoo_dir: the teachers' folder
    :param n_episodes: episodes per level
    :return: the teacher's robustness rows
    """
    from ..runners import setup_worker

    setup_worker()
    suite = get_suite(*suite_ref)
    teacher = suite.load_teacher(env_id, zoo_dir)
    return dict(env=env_id, agent="teacher", rows=robustness_rows(teacher, env_id, n_episodes))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


class RobustnessSuite(Suite):
    name = "robustness"
    description = "teachers vs distilled students under observation noise, FGSM and shifted dynamics (evaluate_robustness)"
    envs = (*CLASSIC, "HalfCheetah-v5")
    teachers = {**{env_id: f"dqn/{env_id}" for env_id in CLASSIC}, "HalfCheetah-v5": "sac/HalfCheetah-v3"}
    methods = {"student": "student (DistillDQN [32, 32], defaults; HalfCheetah: PolicyDistill ~10%)"}
    #: envs whose student is trained unless asked (``--halfcheetah-student``): the others measure their teacher only
    optional_students = ("HalfCheetah-v5",)
    _students: tuple[str, ...] = CLASSIC
    budgets = {
        "full": {"CartPole-v1": 5_000, "Acrobot-v1": 8_000, "MountainCar-v0": 15_000, "LunarLander-v3": 20_000,
                 "HalfCheetah-v5": 20_000},
        "quick": {"CartPole-v1": 2_500, "Acrobot-v1": 3_000, "MountainCar-v0": 4_000, "LunarLander-v3": 5_000,
                  "HalfCheetah-v5": 5_000},
    }  # fmt: skip
    seeds = (3, 1)
    eval_episodes = (10, 5)
    teacher_episodes = 10
    grad_steps = (0, 0)
    learning_columns = ("params", "seeds", "final", "final_iqm")
    plot_file = "robustness-learning.png"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--robustness-episodes", type=int, default=None, help="episodes per level (default 10; --quick 3)")
        parser.add_argument("--halfcheetah-student", action="store_true", help="also train and measure HalfCheetah's student")
        parser.add_argument(
            "--parts",
            nargs="+",
            default=["grids"],
            choices=real_world.PARTS,
            help="what to measure (default: grids, the teachers' and plain students' perturbation grids); sim_to_real, "
            "privileged, robust, multi_teacher, halfcheetah_noise, halfcheetah_robust: the students for the real world "
            "(their own seeds: --seeds, default 1)",
        )
        parser.add_argument(
            "--shifts",
            nargs="+",
            default=["cartpole_weak_push"],
            choices=list(real_world.SHIFTS),
            help="sim_to_real's shifted envs",
        )
        _subset(
            parser,
            "--s2r-methods",
            real_world.SIM_TO_REAL_METHODS,
            "sim_to_real's methods (default: all; e.g. to add a method's seeds to an earlier run's)",
        )
        _subset(
            parser, "--robust-noise", real_world.ROBUST_NOISE, "the robust students' training perturbations (default: all)"
        )
        parser.add_argument(
            "--frames",
            type=int,
            default=None,
            help=f"frames the students of multi_teacher and halfcheetah_noise stack (default "
            f"{real_world.MULTI_TEACHER['frames']} / {real_world.HALFCHEETAH['frames']})",
        )
        parser.add_argument(
            "--student-share",
            type=_share,
            default=None,
            help="the halfcheetah_noise student's acting parameters as a share of the teacher's, in (0, 1] (default "
            f"{real_world.HALFCHEETAH['share']:g})",
        )
        parser.add_argument(
            "--ema-tau",
            type=_ema_tau,
            default=real_world.PRIVILEGED_EMA_TAU,
            help="the privileged students' weight average, DistillDQN's ema_tau in (0, 1]; 0: none (default "
            f"{real_world.PRIVILEGED_EMA_TAU:g})",
        )

        _subset(
            parser,
            "--hc-robust-variants",
            real_world.HALFCHEETAH_ROBUST_VARIANTS,
            "halfcheetah_robust's students: trained on noise, or on noise and the dynamics grid (default: both)",
        )

    def plan(self, args: argparse.Namespace) -> dict[str, Any]:
        settings = super().plan(args)
        default = 3 if args.quick else 10
        settings["robustness_episodes"] = args.robustness_episodes or default
        settings["students"] = [env for env in args.envs if env not in self.optional_students or args.halfcheetah_student]
        grids = "grids" in args.parts
        self._students = tuple(settings["students"]) if grids else ()
        settings.update(parts=list(args.parts), shifts=list(args.shifts), s2r_methods=list(args.s2r_methods))
        return settings

    def trains(self, env_id: str, method: str) -> bool:
        return env_id in self._students

    def teacher_runs(self, env_id: str, zoo_dir: str | None, all_teachers: bool = False) -> list[Path]:
        from sb3_distill.teachers.loading import BUNDLED_DIR

        # The bundled classic teachers always; the MuJoCo teacher from --zoo-dir (default: the repository's copy).
        return super().teacher_runs(env_id, str(BUNDLED_DIR) if env_id in CLASSIC else zoo_dir or str(REPOSITORY_ZOO))

    def check(self, args: argparse.Namespace) -> None:
        if "HalfCheetah-v5" in args.envs:
            try:
                import mujoco  # noqa: F401
            except ImportError as error:
                raise ImportError(f'HalfCheetah needs MuJoCo: pip install "gymnasium[mujoco]" ({error}).') from error
        super().check(args)

    def _mujoco(self) -> Suite:
        return get_suite("mujoco")

    def make_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        if env_id in CLASSIC:
            return super().make_env(env_id, teacher, seed)
        return self._mujoco().make_env(env_id, teacher, seed)

    def make_eval_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        if env_id in CLASSIC:
            return super().make_eval_env(env_id, teacher, seed)
        return self._mujoco().make_eval_env(env_id, teacher, seed)

    def make_reference_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        if env_id in CLASSIC:
            return super().make_reference_env(env_id, teacher, seed)
        return self._mujoco().make_reference_env(env_id, teacher, seed)

    def eval_steps(self, budget: int) -> list[int]:
        return [budget]  # the trained student is what is measured here

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        if env_id not in CLASSIC:
            return self._mujoco().build_model("policy_distill:10%", env_id, env, teacher, seed, spec)
        from sb3_distill import DistillDQN

        return DistillDQN(
            "MlpPolicy", env, teacher=teacher, policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)), seed=seed, device="cpu"
        )

    def after_training(self, method: str, env_id: str, model: Any, teacher: Any, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(robustness=robustness_rows(model, env_id, spec["settings"]["robustness_episodes"]))

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        suite_ref = (self.name, settings["teachers"])
        episodes = settings["robustness_episodes"]
        others = [part for part in args.parts if part != "grids"]
        seeds = list(range(args.first_seed, args.first_seed + (args.seeds or 1)))
        extra = real_world.jobs(
            others,
            list(args.envs),
            list(args.shifts),
            seeds,
            settings["eval_episodes"],
            zoo_dir,
            args.budget_scale,
            str(args.out),
            args.frames,
            list(getattr(args, "s2r_methods", real_world.SIM_TO_REAL_METHODS)),
            student_share=args.student_share,
            ema_tau=args.ema_tau or None,
            robust_noise=list(getattr(args, "robust_noise", real_world.ROBUST_NOISE)),
            hc_robust_variants=list(args.hc_robust_variants),
        )
        if "grids" not in args.parts:
            return extra
        return extra + [
            # Weighted above every student run, so that they run first (and an interrupted run keeps them)
            Job(
                teacher_robustness_job,
                (suite_ref, env_id, zoo_dir, episodes),
                f"robustness teacher {env_id}",
                "robustness",
                30_000,
            )
            for env_id in args.envs
        ]

    # ------------------------------------------------------------------ report
    def report_sections(self, results: dict[str, Any]) -> list[str]:
        lines = ["", "### Robustness: mean normalized score over each grid", ""]
        summary_rows, detail = [], []
        for env_id, teacher_record in results["teachers"].items():
            reference = (teacher_record["random_return"], teacher_record["teacher_return"])
            teacher = next((job["rows"] for job in results.get("robustness", []) if job["env"] == env_id), None)
            students = [row["robustness"] for row in results["rows"] if row["env"] == env_id and "robustness" in row]
            if teacher is None:
                continue

            def score(value: float, reference: tuple[float, float] = reference) -> float:
                return (value - reference[0]) / (reference[1] - reference[0])

            for grid in GRIDS[env_id]:
                teacher_points = [score(row["mean"]) for row in teacher if row["grid"] == grid]
                if not teacher_points:
                    continue
                student_points = [[score(row["mean"]) for row in rows if row["grid"] == grid] for rows in students]
                teacher_mean = _mean(teacher_points)
                if student_points:
                    per_seed = [_mean(points) for points in student_points]
                    student_mean = _mean(per_seed)
                    student_cell = f"{student_mean:.2f} (seeds: {', '.join(f'{v:.2f}' for v in per_seed)})"
                    verdict = "yes" if student_mean >= teacher_mean else "**no**"
                else:
                    student_cell, verdict = "–", "–"
                summary_rows.append([env_id, grid, str(len(teacher_points)), f"{teacher_mean:.2f}", student_cell, verdict])
            detail += ["", f"#### {env_id}", ""]
            keys = list(dict.fromkeys((row["probe"], row["level"]) for row in teacher))
            cells = []
            for probe, level in keys:
                teacher_row = next(row for row in teacher if (row["probe"], row["level"]) == (probe, level))
                means = [row["mean"] for rows in students for row in rows if (row["probe"], row["level"]) == (probe, level)]
                student = f"{_mean(means):.1f} ({score(_mean(means)):.2f})" if means else "–"
                teacher_cell = f"{teacher_row['mean']:.1f} ± {teacher_row['std']:.1f} ({score(teacher_row['mean']):.2f})"
                cells.append([probe, f"{level:g}", teacher_cell, student])
            header = ["perturbation", "level", "teacher return ± std (score)", "student return, mean of seeds (score)"]
            detail += table(header, cells)
        lines += table(["env", "grid", "points", "teacher", "student, mean of seeds", "student ≥ teacher"], summary_rows)
        if not summary_rows:
            return real_world.report(results)
        return [*lines, "", "### Robustness: every level", *detail, *real_world.report(results)]


SUITE = RobustnessSuite()
