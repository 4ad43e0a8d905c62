"""
Reincarnation (Agarwal et al. 2022; Kickstarting, Schmitt et al. 2018): students of a *weak* teacher that keep
learning by RL until they pass it — DistillDQN (its default recipe, qdagger and outgrow) and DistillPPO — against DQN and PPO
from scratch (rl-zoo3's hyperparameters, the students' network) and the weak teacher fine-tuned by its own algorithm.
Scores are normalized by the *strong* teacher (1.0 = the bundled ``dqn/ENV``); the weak teacher's own level is reported
as ``weak``. Every method runs its algorithm's zoo budget.

The weak teachers' ids are a parameter (``--teacher ENV=ALGO/ID``); their default is the package's bundled
``dqn/ENV@weak`` teachers (0.2-0.5 of the strong teacher's normalized score; ``teachers.json`` lists them). A weak
teacher trained apart (``scripts/train_teachers.py --weak --seed 1 --out DIR``) is given with ``--zoo-dir LINK
--teacher ENV=dqn/ENV``, ``LINK`` a link to (or copy of) ``DIR/weak`` under another name than ``weak`` (the snapshot
takes folders named ``weak`` for the bundled weak ones): the reference (1.0) stays the bundled strong teacher.

The methods ending in ``:defaults`` (issue 20) build the students as a user would, with nothing but ``teacher=`` and
``seed=`` (``DistillDQN("MlpPolicy", env, teacher=..., seed=...)``, its own ``reference_returns``), against PPO from
scratch with SB3's defaults (``ppo:defaults``) and DQN from scratch with rl-zoo3's hyperparameters (``dqn:defaults``,
the zoo's DQN at the students' budget); they run :data:`DEFAULTS_BUDGETS` env steps, evaluated every
:data:`DEFAULTS_EVAL_EVERY`. No VecNormalize there, so Acrobot-v1 runs too.

``--defaults-eval-every STEPS`` sets that interval (a coarser grid for LunarLander-v3's 100,000 steps, where
40 evaluations of up to 1,000-step episodes cost as much as the training); ``--budget-scale`` shortens their budget.
The report pairs every ``:defaults`` student with its algorithm from scratch at the same seeds (:func:`paired_sections`:
the mean curves, student − scratch per seed as mean ± standard error, the seeds more than :data:`PAIRED_NOISE`
below, every seed's returns, the noise of both methods, finals and first crossings per seed). The students' rows also
hold what their defaults chose (``choice``: DistillDQN's ``recipe_choice``, DistillPPO's ``distill_coef_choice``) and
their mean λ_t over the updates between two evaluations (``distill_coef_by_eval``), printed under the pair's table.

``--strong-teacher`` (issue 20's strong half) gives every env its bundled *strong* teacher (``dqn/ENV``, the reference)
instead of the weak one: the same as ``--teacher ENV=dqn/ENV`` for every env. The ``weak`` level of the report is then
the strong teacher's own (about 1.0), so "steps to the weak teacher's level" reads "steps to the teacher's level".
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..stats import first_reaching, normalized
from ..suite import Suite
from ..zoo_config import zoo_config

#: The students' network, and so that of the baselines from scratch: equal capacity on both sides.
STUDENT_NET_ARCH = [64, 64]
#: Method → its label, and the rl-zoo3 name of the algorithm whose zoo hyperparameters and budget it runs (``None``:
#: the weak teacher's own).
METHODS: dict[str, tuple[str, str | None]] = {
    "distill_dqn": ("DistillDQN (default recipe)", "dqn"),
    "distill_dqn:qdagger": ("DistillDQN qdagger", "dqn"),
    "distill_dqn:outgrow": ("DistillDQN outgrow", "dqn"),
    "distill_ppo": ("DistillPPO", "ppo"),
    "dqn": ("DQN from scratch (zoo)", "dqn"),
    "ppo": ("PPO from scratch (zoo)", "ppo"),
    "finetune": ("weak teacher fine-tuned (its own algorithm)", None),
    "distill_dqn:defaults": ("DistillDQN, its defaults", "dqn"),
    "distill_ppo:defaults": ("DistillPPO, its defaults", "ppo"),
    "dqn:defaults": ("DQN from scratch (zoo), the defaults' budget", "dqn"),
    "ppo:defaults": ("PPO from scratch, SB3's defaults", "ppo"),
}
QUICK_CAP = 10_000
#: Env steps of the ``:defaults`` methods (every one of them, students and baselines alike).
DEFAULTS_BUDGETS = {"CartPole-v1": 20_000, "Acrobot-v1": 20_000, "LunarLander-v3": 100_000}
#: Env steps between two evaluations of the ``:defaults`` methods (the zoo runs use the shared grid).
DEFAULTS_EVAL_EVERY = 2_500
DEFAULTS = ":defaults"
DEFAULTS_EVAL_OPTION = "--defaults-eval-every"
#: The ``:defaults`` pairs of the report: student → (its label, its algorithm from scratch, that one's label).
PAIRS = {
    "distill_dqn:defaults": ("DistillDQN", "dqn:defaults", "DQN (zoo)"),
    "distill_ppo:defaults": ("DistillPPO", "ppo:defaults", "PPO (SB3 defaults)"),
}
#: "Seeds more than this below" in the paired tables (returns; PPO's own spread on CartPole at these budgets).
PAIRED_NOISE = 100
STRONG_TEACHER = "--strong-teacher"


class _StrongTeachers(argparse.Action):
    """``--strong-teacher``: ``--teacher ENV=dqn/ENV`` (the bundled strong teacher, the reference) for every env."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *_: Any) -> None:
        setattr(namespace, self.dest, True)
        strong = [f"{env_id}={spec}" for env_id, spec in ReincarnationSuite.reference_teachers.items()]
        namespace.teacher = [*(getattr(namespace, "teacher", None) or []), *strong]


class ReincarnationSuite(Suite):
    name = "reincarnation"
    description = "weak teachers → DistillDQN / DistillPPO vs DQN / PPO from scratch and the fine-tuned weak teacher"
    # This suite builds no VecNormalize: where the zoo normalizes (Acrobot's PPO), only the :defaults methods run (trains).
    envs = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3")
    teachers = {env_id: f"dqn/{env_id}@weak" for env_id in envs}
    reference_teachers = {env_id: f"dqn/{env_id}" for env_id in envs}
    methods = {method: label for method, (label, _) in METHODS.items()}
    seeds = (5, 1)
    grad_steps = (0, 0)
    learning_columns = (
        "params", "seeds", "steps_to_weak", "seeds_at_weak", "steps_to_1.0", "seeds_at_1.0", "median_seed_steps",
        "final", "final_iqm",
    )  # fmt: skip
    steps_label = "env steps (teacher-phase steps included)"

    def algorithm(self, method: str, env_id: str) -> str:
        """
        :param method: a method name
        :param env_id: gymnasium id
        :return: the rl-zoo3 name of the algorithm that learns in ``method`` (the weak teacher's for ``finetune``)
        """
        return METHODS[method][1] or self.teachers[env_id].split("/")[0]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            STRONG_TEACHER,
            action=_StrongTeachers,
            nargs=0,
            default=False,
            help="the students learn from the bundled strong teachers (dqn/ENV, 1.0) instead of the weak ones: "
            "--teacher ENV=dqn/ENV for every env (the report's 'weak' level is then the strong teacher's own)",
        )

        parser.add_argument(
            DEFAULTS_EVAL_OPTION,
            type=int,
            default=DEFAULTS_EVAL_EVERY,
            metavar="STEPS",
            help=f"env steps between two evaluations of the :defaults methods (default {DEFAULTS_EVAL_EVERY:,}; the "
            "budget's end is always evaluated); e.g. 5000 or 10000 for LunarLander-v3, with --budget-scale to "
            "shorten its 100,000 env steps",
        )

    def plan(self, args: argparse.Namespace) -> dict[str, Any]:
        settings = super().plan(args)
        settings["defaults_eval_every"] = getattr(args, "defaults_eval_every", DEFAULTS_EVAL_EVERY)
        return settings

    def check(self, args: argparse.Namespace) -> None:
        every = getattr(args, "defaults_eval_every", DEFAULTS_EVAL_EVERY)
        if every < 1:
            raise ValueError(f"{DEFAULTS_EVAL_OPTION} {every}: give a positive number of env steps (e.g. 5000).")
        if getattr(args, "strong_teacher", False):
            strong = {f"{env_id}={spec}" for env_id, spec in self.reference_teachers.items()}
            others = [item for item in args.teacher if item not in strong]
            if others or args.zoo_dir is not None:
                given = " ".join([*(f"--teacher {item}" for item in others), *(["--zoo-dir"] if args.zoo_dir else [])])
                raise ValueError(
                    f"{STRONG_TEACHER} runs the bundled strong teachers: drop {given} (or drop {STRONG_TEACHER})."
                )
        if "distill_ppo" in args.methods:
            try:
                from sb3_distill.distill_ppo import DistillPPO  # noqa: F401
            except ImportError as error:
                raise ImportError(f"DistillPPO is not importable ({error}): drop it with --methods ... or update.") from error
        normalizing = [(m, e) for m in args.methods for e in args.envs if not self.trains(e, m)]
        if normalizing and all(not self.trains(e, m) for m in args.methods for e in args.envs):
            raise ValueError(
                f"The zoo trains with VecNormalize for {normalizing}: this suite does not handle it yet (the :defaults "
                "methods run on every env)."
            )
        super().check(args)

    def trains(self, env_id: str, method: str) -> bool:
        """Not the zoo-settings methods where the zoo normalizes (Acrobot's PPO): this suite builds no VecNormalize."""
        if method.endswith(DEFAULTS):
            return True
        return not zoo_config(self.algorithm(method, env_id), env_id).normalize

    def teacher_runs(self, env_id: str, zoo_dir: str | None, all_teachers: bool = False) -> list[Any]:
        # The reference (1.0) is the bundled strong teacher whatever folder the weak one comes from (load_teacher)
        return super().teacher_runs(env_id, zoo_dir, all_teachers=all_teachers and zoo_dir is None)

    def load_teacher(self, env_id: str, zoo_dir: str | None, spec: str | None = None) -> Any:
        if spec is not None and spec == self.reference_teachers.get(env_id):
            zoo_dir = None
        teacher = super().load_teacher(env_id, zoo_dir, spec)
        if spec is None and str(teacher.source).endswith("(bundled)") and zoo_dir is not None:
            # load_teacher falls back on the bundled teachers: a weak teacher missing from the folder would silently
            # be the strong one (a --zoo-dir named "weak" is snapshotted as the bundled weak folder)
            raise FileNotFoundError(
                f"{self.teachers[env_id]} is not in {zoo_dir}: load_teacher fell back on the bundled one. Give --zoo-dir "
                "an rl-zoo3 folder that holds it (not one named 'weak': link or copy it to another name)."
            )
        return teacher

    def eval_steps(self, budget: int) -> list[int]:
        every = getattr(self, "_eval_every", None)  # set by build_model for the :defaults methods
        if every is None:
            return super().eval_steps(budget)
        return sorted({*range(every, budget + 1, every), budget})

    def budget(self, env_id: str, method: str, args: argparse.Namespace) -> int:
        if method.endswith(DEFAULTS):
            return max(
                int(
                    (min(DEFAULTS_BUDGETS[env_id], QUICK_CAP) if args.quick else DEFAULTS_BUDGETS[env_id]) * args.budget_scale
                ),
                200,
            )
        steps = zoo_config(self.algorithm(method, env_id), env_id).n_timesteps
        return max(int((min(steps, QUICK_CAP) if args.quick else steps) * args.budget_scale), 200)

    def levels_for(self, teacher: dict[str, Any]) -> dict[str, float]:
        references = (teacher["random_return"], teacher["reference_return"])
        return {"weak": normalized(teacher["teacher_return"], references), "1.0": 1.0}

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        from stable_baselines3.common.env_util import make_vec_env

        if method.endswith(DEFAULTS):
            self._eval_every = spec.get("settings", {}).get("defaults_eval_every", DEFAULTS_EVAL_EVERY)
            if method != "dqn:defaults":
                model = self._build_with_defaults(method, env, teacher, seed)
                if method != "ppo:defaults":
                    _trace_distill_coef(model, self._eval_every)
                return model
            method = "dqn"
        config = zoo_config(self.algorithm(method, env_id), env_id)
        hyperparams = dict(config.hyperparams, policy_kwargs=dict(config.hyperparams.get("policy_kwargs", {})))
        if method == "finetune":
            # The weak teacher's own algorithm with the zoo's hyperparameters (those it was trained with), from its
            # weights; its optimizer state and replay data are not saved with it: Reincarnating RL's fine-tuning.
            from rl_zoo3.utils import ALGOS

            model = ALGOS[teacher.algo](env=env, seed=seed, device="cpu", **hyperparams)
            model.policy.load_state_dict(teacher.policy.state_dict())
            return model
        hyperparams["policy_kwargs"]["net_arch"] = list(STUDENT_NET_ARCH)
        if config.n_envs > 1:  # PPO collects from the zoo's number of envs
            env = make_vec_env(env_id, n_envs=config.n_envs, seed=seed)
        common = dict(env=env, seed=seed, device="cpu", **hyperparams)
        if method == "dqn":
            from stable_baselines3 import DQN

            return DQN(**common)
        if method == "ppo":
            from stable_baselines3 import PPO

            return PPO(**common)
        if method == "distill_ppo":
            from sb3_distill.distill_ppo import DistillPPO  # lazily: it lands with issue 11

            return DistillPPO(teacher=teacher, **common)
        from sb3_distill import DistillDQN

        recipe = method.partition(":")[2] or None
        return DistillDQN(teacher=teacher, recipe=recipe, reference_returns=tuple(spec["teacher_returns"]), **common)

    def after_training(self, method: str, env_id: str, model: Any, teacher: Any, spec: dict[str, Any]) -> dict[str, Any]:
        """The :defaults students: what their defaults chose, and their mean λ_t between two evaluations."""
        trace = getattr(model, "_distill_coef_trace", None)
        if trace is None:
            return {}
        return dict(
            distill_coef_by_eval=[
                float(np.mean(trace[i])) if trace.get(i) else None for i in range(max(trace, default=-1) + 1)
            ],
            choice=getattr(model, "recipe_choice", None) or getattr(model, "distill_coef_choice", None),
        )

    def report_sections(self, results: dict[str, Any]) -> list[str]:
        return paired_sections(results)

    @staticmethod
    def _build_with_defaults(method: str, env: Any, teacher: Any, seed: int) -> Any:
        """Issue 20: the student as a user builds it (``teacher=`` and ``seed=``), or PPO from scratch with SB3's defaults."""
        if method == "ppo:defaults":
            from stable_baselines3 import PPO

            return PPO("MlpPolicy", env, seed=seed, device="cpu")
        if method == "distill_ppo:defaults":
            from sb3_distill.distill_ppo import DistillPPO

            return DistillPPO("MlpPolicy", env, teacher=teacher, seed=seed, device="cpu")
        from sb3_distill import DistillDQN

        return DistillDQN("MlpPolicy", env, teacher=teacher, seed=seed, device="cpu")


def _trace_distill_coef(model: Any, every: int) -> None:
    """
    Record the student's λ_t (``current_distill_coef``, called once per update) by evaluation interval, in
    ``model._distill_coef_trace`` (interval index → values); what the student computes is unchanged.
    """
    trace: dict[int, list[float]] = {}
    compute = model.current_distill_coef

    def traced() -> float:
        value = compute()
        trace.setdefault(max(model.num_timesteps - 1, 0) // every, []).append(float(value))
        return value

    model._distill_coef_trace = trace
    model.current_distill_coef = traced


def _steps_label(step: int) -> str:
    return f"{step / 1000:g}k"


def _first(curve: list[dict[str, Any]], level: float) -> str:
    reached = first_reaching(curve, level)
    return _steps_label(reached["step"]) if reached else "never"


def _noise_lines(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    difference: np.ndarray,
    steps: list[int],
    student_label: str,
    scratch_label: str,
) -> list[str]:
    """
    "Within evaluation noise" in numbers: each seed's difference averaged over its evaluations after the first 10% of
    the budget (one number a seed, so one run's evaluations are not counted as independent), and each method's own
    noise: its |change| between consecutive evaluations of one seed, and its evaluations stuck at its lowest return on
    every episode (std 0, e.g. Acrobot's greedy −500).
    """
    after = np.array([step > 0.1 * pairs[0][0]["budget"] for step in steps])
    lines: list[str] = []
    if after.any():
        per_seed = difference[:, after].mean(axis=1)
        error = per_seed.std(ddof=1) / np.sqrt(len(per_seed)) if len(per_seed) > 1 else 0.0
        lines.append(
            "student − scratch averaged over each seed's evaluations after the first 10% of the budget: "
            + " / ".join(f"{value:+.0f}" for value in per_seed)
            + f"; over seeds {per_seed.mean():+.0f} ± {error:.0f}"
        )
    for label, index in ((student_label, 0), (scratch_label, 1)):
        curves = np.array([[record["mean_return"] for record in pair[index]["curve"]] for pair in pairs])
        stds = np.array([[record["std_return"] for record in pair[index]["curve"]] for pair in pairs])
        changes = np.abs(np.diff(curves, axis=1))
        stuck = (stds == 0) & (curves <= curves.min())
        floor = f"; evaluations at {curves.min():.0f} on every episode: {int(stuck.sum())} of {stuck.size}"
        lines.append(
            f"{label}'s own noise: |change| between consecutive evaluations {changes.mean():.0f} on the mean "
            f"(largest per seed {' / '.join(f'{row.max():.0f}' for row in changes)}){floor if stuck.any() else ''}"
            if changes.size
            else f"{label}: one evaluation per seed"
        )
    return lines


def paired_sections(results: dict[str, Any]) -> list[str]:
    """
    Issue 20's comparison: every ``:defaults`` student against its algorithm from scratch at the same seeds.

    :param results: the content of ``results.json``
    :return: per env and pair, the mean curves, student − scratch per seed (mean ± standard error), the seeds more than
        :data:`PAIRED_NOISE` below, every seed's pair of returns, the noise of both (:func:`_noise_lines`), and per
        seed the finals, the first evaluations at the strong level (1.0), at the
        teacher's and at 0.9, and the runs' seconds
    """
    lines: list[str] = []
    for env_id, teacher in results["teachers"].items():
        rows = {(row["method"], row["seed"]): row for row in results["rows"] if row["env"] == env_id}
        for student, (student_label, scratch, scratch_label) in PAIRS.items():
            seeds = sorted(seed for method, seed in rows if method == student and (scratch, seed) in rows)
            if not seeds:
                continue
            pairs = [(rows[student, seed], rows[scratch, seed]) for seed in seeds]
            steps = [record["step"] for record in pairs[0][0]["curve"]]
            if any([record["step"] for record in row["curve"]] != steps for pair in pairs for row in pair):
                lines += ["", f"{env_id}, {student_label} vs {scratch_label}: the runs' evaluation grids differ, not paired."]
                continue
            ours = np.array([[record["mean_return"] for record in s["curve"]] for s, _ in pairs])
            theirs = np.array([[record["mean_return"] for record in b["curve"]] for _, b in pairs])
            difference = ours - theirs
            error = difference.std(axis=0, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 else np.zeros(len(steps))
            zoo_id = teacher["teacher"]
            # The reference's id names a file of --zoo-dir too (a teacher trained apart): the strong teacher is the one
            # that plays the reference's returns (both are measured on the same episodes)
            strong = zoo_id == teacher.get("reference") and teacher["teacher_return"] == teacher["reference_return"]
            kind = "bundled weak teacher" if zoo_id.endswith("@weak") else ("the strong teacher" if strong else "teacher")
            lines += [
                "",
                f"**{env_id}, {kind}** (`{zoo_id}`): {student_label} vs {scratch_label} from scratch, seeds "
                f"{', '.join(map(str, seeds))} (teacher {teacher['teacher_return']:.0f}, random "
                f"{teacher['random_return']:.0f}, strong {teacher['reference_return']:.0f})",
                "",
                "| | " + " | ".join(map(_steps_label, steps)) + " |",
                "|---|" + "---|" * len(steps),
                f"| {student_label}, mean | " + " | ".join(f"{value:.0f}" for value in ours.mean(axis=0)) + " |",
                f"| {scratch_label}, mean | " + " | ".join(f"{value:.0f}" for value in theirs.mean(axis=0)) + " |",
                "| student − scratch, mean ± SE | "
                + " | ".join(f"{d:+.0f} ± {e:.0f}" for d, e in zip(difference.mean(axis=0), error, strict=True))
                + " |",
                f"| seeds > {PAIRED_NOISE} below | "
                + " | ".join(f"{int((column < -PAIRED_NOISE).sum())}/{len(seeds)}" for column in difference.T)
                + " |",
                *(
                    f"| seed {seed}, student / scratch | "
                    + " | ".join(f"{a:.0f} / {b:.0f}" for a, b in zip(mine, base, strict=True))
                    + " |"
                    for seed, mine, base in zip(seeds, ours, theirs, strict=True)
                ),
                "",
                *_noise_lines(pairs, difference, steps, student_label, scratch_label),
                f"per seed, {student_label} / {scratch_label}: final "
                + "; ".join(f"{s['final_return']:.0f} / {b['final_return']:.0f}" for s, b in pairs)
                + "; steps to the strong level (1.0) "
                + "; ".join(f"{_first(s['curve'], 1.0)} / {_first(b['curve'], 1.0)}" for s, b in pairs)
                + "; to the weak teacher's "
                + "; ".join(
                    f"{_first(s['curve'], s['levels']['weak'])} / {_first(b['curve'], b['levels']['weak'])}" for s, b in pairs
                ),
                "steps to 0.9 of the strong level: "
                + "; ".join(f"{_first(s['curve'], 0.9)} / {_first(b['curve'], 0.9)}" for s, b in pairs),
                f"seconds per run (training and evaluations), {student_label} / {scratch_label}: "
                + "; ".join(f"{s['total_seconds']:.0f} / {b['total_seconds']:.0f}" for s, b in pairs),
            ]
            traced = [(seed, s) for seed, (s, _) in zip(seeds, pairs, strict=True) if s.get("distill_coef_by_eval")]
            for seed, s in traced:
                values = " / ".join("–" if v is None else f"{v:.2g}" for v in s["distill_coef_by_eval"])
                lines.append(
                    f"{student_label} seed {seed}, mean λ_t of the updates before each evaluation (since the previous "
                    f"one): {values}; {s.get('choice')}"
                )
    return ["", "### Students' defaults against their algorithm from scratch (paired by seed)", *lines] if lines else []


SUITE = ReincarnationSuite()
