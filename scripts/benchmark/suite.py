"""
What a benchmark suite is: envs with their teachers, methods, budgets and seeds, and how its report reads.

A suite is one small file in ``suites/`` that subclasses :class:`Suite`, overrides what differs (at least
``build_model``) and ends with ``SUITE = MySuite()``; ``--suite NAME`` finds it by its file name.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import pkgutil
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .measure import eval_grid


@dataclass
class Job:
    """
    One unit of work, run in a fresh process.

    :param function: a module-level function of a ``benchmark`` module (the workers import it by name)
    :param args: its arguments (picklable)
    :param name: for the progress bar and the failure list
    :param section: the list of ``results.json`` the result goes to
    :param weight: how far it moves the progress bar (about its env steps)
    :param seed: jobs run seed by seed, so that an interrupted run keeps complete seeds
    """

    function: Callable[..., dict[str, Any]]
    args: tuple[Any, ...]
    name: str
    section: str = "rows"
    weight: int = 1_000
    seed: int = 0


class Suite:
    """
    The defaults of a suite: every method of :attr:`methods` trained on every env of :attr:`envs` from the teacher
    :attr:`teachers` names (looked up in ``--zoo-dir`` or the bundled teachers), evaluated on a shared grid of env
    steps, ``seeds`` seeds each.
    """

    name: ClassVar[str]
    #: one line for ``--help``
    description: ClassVar[str] = ""
    #: gymnasium ids, in report order
    envs: ClassVar[tuple[str, ...]]
    #: env id → the teacher's zoo id ``"algo/ENV"`` (``ENV`` as the zoo recorded it, e.g. ``HalfCheetah-v3``);
    #: ``--teacher ENV=ID`` replaces one
    teachers: dict[str, str]
    #: env id → the zoo id of the agent whose return is 1.0 on the normalized scale, where it is not the teacher (e.g.
    #: a strong teacher, when students learn from a weak one)
    reference_teachers: ClassVar[dict[str, str]] = {}
    #: method name → label in the tables and plots, in report order
    methods: ClassVar[dict[str, str]]
    #: env steps of a student run: ``{"full": {env: steps}, "quick": {env: steps}}``
    budgets: ClassVar[dict[str, dict[str, int]]]
    #: the method that step and wall-time ratios are taken against (e.g. DQN from scratch), if any
    reference_method: ClassVar[str | None] = None
    #: normalized scores whose first crossing is reported
    levels: ClassVar[tuple[float, ...]] = (0.9, 1.0)
    #: seeds per method: full run, ``--quick``
    seeds: ClassVar[tuple[int, int]] = (5, 1)
    #: episodes per evaluation: full run, ``--quick``
    eval_episodes: ClassVar[tuple[int, int]] = (10, 5)
    #: episodes of the teacher's and the random policy's reference returns
    teacher_episodes: ClassVar[int] = 30
    #: timed gradient steps per run: full run, ``--quick`` (0: not measured)
    grad_steps: ClassVar[tuple[int, int]] = (400, 150)
    #: batch sizes of the latency / throughput measurements
    latency_batch_sizes: ClassVar[tuple[int, ...]] = (1,)
    #: columns of the learning table (names of :data:`benchmark.report.COLUMNS`)
    learning_columns: ClassVar[tuple[str, ...]]
    #: the plot written beside ``results.json``
    plot_file: ClassVar[str] = "benchmark.png"
    #: logarithmic env-step axis (budgets that span decades)
    plot_log_x: ClassVar[bool] = True
    #: what the methods are trained with, in a sentence for the plot's x axis
    steps_label: ClassVar[str] = "env steps"

    # ------------------------------------------------------------------ plan (parent process)
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """
        Options of this suite only.

        :param parser: the command line's parser
        """

    def n_seeds(self, method: str, args: argparse.Namespace) -> int:
        """
        :param method: a method name
        :param args: parsed arguments
        :return: seeds of ``method``
        """
        return args.seeds if args.seeds is not None else self.seeds[1 if args.quick else 0]

    def budget(self, env_id: str, method: str, args: argparse.Namespace) -> int:
        """
        :param env_id: gymnasium id
        :param method: a method name
        :param args: parsed arguments
        :return: env steps of ``method`` on ``env_id``
        """
        return max(int(self.budgets["quick" if args.quick else "full"][env_id] * args.budget_scale), 200)

    def trains(self, env_id: str, method: str) -> bool:
        """
        :param env_id: gymnasium id
        :param method: a method name
        :return: whether ``method`` is trained on ``env_id`` (a suite may measure only the teacher of some envs)
        """
        return True

    def plan(self, args: argparse.Namespace) -> dict[str, Any]:
        """
        :param args: parsed arguments
        :return: seeds, budgets and measurement sizes of this run (stored in ``results.json``)
        """
        mode = 1 if args.quick else 0
        return dict(
            mode="quick" if args.quick else "full",
            teachers={env_id: self.teachers[env_id] for env_id in args.envs},
            seeds={method: self.n_seeds(method, args) for method in args.methods},
            budgets={env_id: {method: self.budget(env_id, method, args) for method in args.methods} for env_id in args.envs},
            eval_episodes=args.eval_episodes or self.eval_episodes[mode],
            grad_steps=args.grad_steps if args.grad_steps is not None else self.grad_steps[mode],
        )

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        """
        Measurements beside the learning runs (e.g. cost probes), unless ``--no-profile``.

        :param settings: the run's plan
        :param zoo_dir: the teachers' snapshot folder
        :param args: parsed arguments
        :return: the jobs
        """
        return []

    def teacher_runs(self, env_id: str, zoo_dir: str | None, all_teachers: bool = False) -> list[Path]:
        """
        :param env_id: gymnasium id
        :param zoo_dir: an rl-zoo3 log folder (default: the bundled teachers)
        :param all_teachers: also the reference teacher's (:attr:`reference_teachers`)
        :return: the run folders of the teacher of ``env_id`` (``ALGO/ENV_N``, ``ENV`` as recorded or renamed since)
        """
        from sb3_distill.teachers.legacy import legacy_env_ids
        from sb3_distill.teachers.loading import BUNDLED_DIR, WEAK_SUFFIX

        specs = {self.teachers[env_id]}
        if all_teachers and env_id in self.reference_teachers:
            specs.add(self.reference_teachers[env_id])
        runs = []
        for spec in sorted(specs):
            source = Path(zoo_dir) if zoo_dir else BUNDLED_DIR
            if spec.endswith(WEAK_SUFFIX):  # the package's own weak teachers, always bundled
                source, spec = BUNDLED_DIR / "weak", spec.removesuffix(WEAK_SUFFIX)
            algo, recorded = spec.split("/", 1)
            found = [run for name in legacy_env_ids(recorded) for run in (source / algo).glob(f"{name}_*") if run.is_dir()]
            if not found:
                raise FileNotFoundError(
                    f"No {algo}/{recorded}_N teacher in {source}: give --zoo-dir an rl-zoo3 folder that has one "
                    "(e.g. a clone of rl-baselines3-zoo's rl-trained-agents), or train one with rl-zoo3."
                )
            runs += found
        return runs

    def check(self, args: argparse.Namespace) -> None:
        """
        Refuse a run that cannot work, before anything is measured or written.

        :param args: parsed arguments
        """
        for env_id in args.envs:
            self.teacher_runs(env_id, args.zoo_dir, all_teachers=True)

    def snapshot_teachers(self, envs: list[str], zoo_dir: str | None, target: Path) -> Path:
        """
        Copy the teachers' run folders into ``target``, so that every run uses the same files even if the teachers
        are re-trained meanwhile.

        :param envs: gymnasium ids
        :param zoo_dir: an rl-zoo3 log folder (default: the bundled teachers)
        :param target: the snapshot folder (replaced)
        :return: ``target``, an rl-zoo3 log folder
        """
        if target.exists():
            shutil.rmtree(target)
        for env_id in envs:
            for run in self.teacher_runs(env_id, zoo_dir, all_teachers=True):
                weak = ["weak"] if run.parent.parent.name == "weak" else []
                shutil.copytree(run, target.joinpath(*weak, run.parent.name, run.name))
        return target

    # ------------------------------------------------------------------ one run (worker process)
    def load_teacher(self, env_id: str, zoo_dir: str | None, spec: str | None = None) -> Any:
        """
        :param env_id: gymnasium id
        :param zoo_dir: the teachers' folder (default: the bundled teachers)
        :param spec: another zoo id than the teacher's (e.g. the reference teacher's)
        :return: the teacher of ``env_id``
        """
        from sb3_distill import load_teacher
        from sb3_distill.teachers.loading import BUNDLED_DIR, check_teacher_spaces

        # The given folder first, so that a ./logs folder never changes what is measured.
        teacher = load_teacher(spec or self.teachers[env_id], device="cpu", zoo_dirs=[zoo_dir or BUNDLED_DIR])
        env = self.make_env(env_id, teacher, 0)  # the teacher's wrappers may change the spaces
        check_teacher_spaces(teacher, env.observation_space, env.action_space)
        env.close()
        return teacher

    def make_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        """
        :param env_id: gymnasium id
        :param teacher: the teacher (``None`` for methods that learn without one)
        :param seed: seed
        :return: the training VecEnv (one env, Monitor-wrapped)
        """
        from stable_baselines3.common.env_util import make_vec_env

        return make_vec_env(env_id, n_envs=1, seed=seed)

    def eval_steps(self, budget: int) -> list[int]:
        """
        :param budget: the run's env steps
        :return: env steps at which every run is evaluated (shared by all seeds and methods)
        """
        return eval_grid(budget)

    def make_eval_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        """
        :param env_id: gymnasium id
        :param teacher: the teacher
        :param seed: seed
        :return: the evaluation env (separate from training; same wrappers)
        """
        return self.make_env(env_id, teacher, seed)

    def make_reference_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        """
        :param env_id: gymnasium id
        :param teacher: the teacher
        :param seed: seed
        :return: the env the teacher's and the random policy's reference returns are measured on: the evaluation env,
            without any student-side normalization (a teacher normalizes its own inputs)
        """
        return self.make_eval_env(env_id, teacher, seed)

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        """
        :param method: one of :attr:`methods`
        :param env_id: gymnasium id
        :param env: the training VecEnv
        :param teacher: the teacher
        :param seed: seed
        :param spec: the run's spec (``reference_returns``, ``settings``...)
        :return: the model, not trained
        """
        raise NotImplementedError

    def after_training(self, method: str, env_id: str, model: Any, teacher: Any, spec: dict[str, Any]) -> dict[str, Any]:
        """
        Measurements of the trained model in its worker (e.g. its robustness), merged into its row.

        :param method: the method of ``model``
        :param env_id: gymnasium id
        :param model: the trained model
        :param teacher: the teacher
        :param spec: the run's spec
        :return: entries added to the row
        """
        return {}

    def gradient_step_reference(self, method: str, model: Any, env: Any, seed: int) -> tuple[str, Any] | None:
        """
        A model whose gradient step ``model``'s is compared with, holding the same replay data.

        :param method: the method of ``model``
        :param model: the trained model
        :param env: its env
        :param seed: seed
        :return: its name and the reference model (logger set), or ``None`` (no gradient-step measurement)
        """
        return None

    def levels_for(self, teacher: dict[str, Any]) -> dict[str, float]:
        """
        :param teacher: the teacher's record
        :return: name → normalized score whose first crossing is reported (``"1.0"`` is the reference's level)
        """
        return {str(level): level for level in self.levels}

    # ------------------------------------------------------------------ report
    def report_sections(self, results: dict[str, Any]) -> list[str]:
        """
        :param results: the content of ``results.json``
        :return: markdown lines after the learning table (e.g. the extra jobs' tables)
        """
        return []


def available_suites() -> list[str]:
    """
    :return: the names of the suite files in ``benchmark/suites``
    """
    from . import suites

    return sorted(module.name for module in pkgutil.iter_modules(suites.__path__) if not module.name.startswith("_"))


def get_suite(name: str, teachers: dict[str, str] | None = None) -> Suite:
    """
    :param name: a suite's file name in ``benchmark/suites``
    :param teachers: env id → zoo id of teachers that replace the suite's own (``--teacher``)
    :return: its ``SUITE`` (a copy, where ``teachers`` replaces some)
    """
    if name not in available_suites():
        raise ValueError(f"Unknown suite {name!r}: use one of {', '.join(available_suites())}.")
    suite = importlib.import_module(f"{__package__}.suites.{name}").SUITE
    if teachers:
        suite = copy.copy(suite)
        suite.teachers = {**suite.teachers, **teachers}
    return suite
