"""
Students for the real world (issue 21), the robustness suite's ``--parts`` beyond its perturbation grids: each part is
a list of jobs (one process each) whose results land in their own section of ``results.json`` and in their own table.

* ``sim_to_real``: the teacher of the nominal env ("sim"), a student in a shifted env ("real") where the teacher falls
  below half its nominal return, against the teacher zero-shot, the teacher fine-tuned by its own algorithm (DQN, the
  zoo's hyperparameters, from its weights) and the students' algorithms from scratch (DQN and PPO, the zoo's
  hyperparameters, the students' network). Metric: env steps in the shifted env to its reward threshold, final
  return. The students run their defaults: their ``"auto"`` choices measure the teacher in the student's env (those
  episodes are real-world episodes too: they are added to the student's steps).
* ``privileged``: students that do not see the velocities (the last frames of the rest), taught by the full-state
  teacher through ``StudentObservation``.
* ``robust``: students trained on noisy observations, the teacher labelling the clean state, and their noise grid.
* ``multi_teacher``: teachers of several dynamics (``scripts/train_teachers.py --dynamics``, trained once into
  ``OUT/dynamics-teachers``) distilled into one frame-stacked student that trains on dynamics drawn per episode
  (``RandomDynamics``), each episode labelled by its own dynamics' expert (``ExpertTeacher``) or by all teachers
  averaged, against each single teacher over the dynamics grid.
* ``halfcheetah_noise``: a HalfCheetah student under observation noise σ = 0.1 (its last frames stacked), the SAC
  teacher on the clean state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Students' network (the reincarnation suite's; the baselines from scratch get the same).
NET_ARCH = [64, 64]

#: name → the shifted env: env id, dynamics factors (``shift_dynamics``), make keywords, a label.
SHIFTS: dict[str, dict[str, Any]] = {
    "cartpole_weak_push": dict(
        env="CartPole-v1", dynamics={"force_mag": 0.25}, kwargs={}, label="CartPole-v1, push force × 0.25"
    ),
    "cartpole_push_0.45": dict(
        env="CartPole-v1", dynamics={"force_mag": 0.45}, kwargs={}, label="CartPole-v1, push force × 0.45"
    ),
    "cartpole_long_pole_weak_push": dict(
        env="CartPole-v1", dynamics={"length": 3.0, "force_mag": 0.5}, kwargs={}, label="CartPole-v1, pole × 3, force × 0.5"
    ),
    "lunarlander_wind": dict(
        env="LunarLander-v3",
        dynamics={},
        kwargs=dict(enable_wind=True, wind_power=10.0, turbulence_power=1.5),
        label="LunarLander-v3, wind 10, turbulence 1.5",
    ),
}
#: method → (label, rl-zoo3 algorithm whose hyperparameters it runs; None: the student's own defaults)
SIM_TO_REAL_METHODS: dict[str, tuple[str, str | None]] = {
    "teacher": ("teacher zero-shot", None),
    "distill_dqn": ("DistillDQN (defaults)", None),
    "distill_ppo": ("DistillPPO (defaults, the zoo's PPO settings)", "ppo"),
    "finetune": ("teacher fine-tuned by DQN (zoo)", "dqn"),
    "dqn": ("DQN from scratch (zoo)", "dqn"),
    "ppo": ("PPO from scratch (zoo)", "ppo"),
    "sim_student": ("distilled in sim, then DistillDQN (defaults) in real", None),
    "sim_student_dqn": ("distilled in sim, then DQN (zoo) in real", "dqn"),
    "sim_student_ppo": ("distilled in sim (DistillPPO), then DistillPPO in real", "ppo"),
}
#: the methods whose student is first distilled in the nominal env ("sim"): their sim steps are reported, not counted
SIM_FIRST = ("sim_student", "sim_student_dqn", "sim_student_ppo")
#: env steps of the sim-to-real runs: DQN-like / PPO-like, per env
SIM_TO_REAL_BUDGETS = {"CartPole-v1": (20_000, 60_000), "LunarLander-v3": (100_000, 300_000)}
#: sim (nominal env) steps of the students distilled there first: DistillDQN / DistillPPO, per env
SIM_BUDGETS = {"CartPole-v1": (10_000, 20_000), "LunarLander-v3": (50_000, 100_000)}
#: relative observation noise of the robust students' training: a fixed σ, or one drawn per episode; with
#: ``+dynamics`` the env's dynamics are drawn per episode too (:func:`dynamics_variants`: domain randomization)
ROBUST_NOISE = {
    "fixed_0.2": (0.2,),
    "per_episode": (0.0, 0.1, 0.2, 0.3),
    "per_episode+dynamics": (0.0, 0.1, 0.2, 0.3),
    # smaller noise, for envs whose "auto" scale is wide (LunarLander's velocity bounds ±10: σ = 0.1 is 1 m/s there)
    "per_episode_low": (0.0, 0.025, 0.05, 0.1),
}
#: the noise grid the robust students are measured on (the robustness suite's)
NOISE_LEVELS = (0.0, 0.05, 0.1, 0.2, 0.3)
#: CartPole's push-force grid of the multi-teacher students, and the variants that get a teacher of their own (the
#: students train on these, each episode's force drawn among them)
FORCE_GRID = (0.25, 0.35, 0.5, 0.75, 1.0, 1.5)
FORCE_TEACHERS = (0.25, 0.5, 1.0)


def _eval_grid(budget: int) -> list[int]:
    fine = [500, 1000, 1500, 2000, 3000, 4000, 5000, 7500, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000]
    coarse = [75_000, 100_000, 150_000, 200_000, 250_000, 300_000]
    return [step for step in (*fine, *coarse) if step <= budget] + ([] if budget in (*fine, *coarse) else [budget])


def shifted_env(shift: str, n_envs: int = 1, seed: int = 0, wrapper: Any = None) -> Any:
    """
    :param shift: a key of :data:`SHIFTS`
    :param n_envs: envs side by side
    :param seed: seed
    :param wrapper: an extra gym wrapper (applied after the shift)
    :return: the shifted env as a ``VecEnv`` (Monitor-wrapped)
    """
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill.robustness import shift_dynamics

    entry = SHIFTS[shift]

    def wrap(env: Any) -> Any:
        for parameter, factor in entry["dynamics"].items():
            shift_dynamics(env, parameter, factor)
        return wrapper(env) if wrapper is not None else env

    return make_vec_env(entry["env"], n_envs=n_envs, seed=seed, env_kwargs=dict(entry["kwargs"]), wrapper_class=wrap)


def _threshold(env_id: str) -> float:
    import gymnasium as gym

    return float(gym.spec(env_id).reward_threshold)


def _curve(model: Any, budget: int, eval_env: Any, episodes: int) -> list[dict[str, float]]:
    from ..measure import eval_callback_class

    callback = eval_callback_class()(eval_env, _eval_grid(budget), episodes, (0.0, 1.0))
    model.learn(budget, callback=callback)
    return [dict(step=record["step"], mean=record["mean_return"], std=record["std_return"]) for record in callback.records]


def _zoo_model(algo: str, env_id: str, env_factory: Any, seed: int, net_arch: list[int] | None, teacher: Any = None) -> Any:
    from rl_zoo3.utils import ALGOS

    from ..zoo_config import zoo_config

    config = zoo_config(algo, env_id)
    hyperparams = dict(config.hyperparams, policy_kwargs=dict(config.hyperparams.get("policy_kwargs", {})))
    if net_arch is not None:
        hyperparams["policy_kwargs"]["net_arch"] = list(net_arch)
    env = env_factory(config.n_envs)
    if teacher is not None:
        from sb3_distill.distill_ppo import DistillPPO

        return DistillPPO(env=env, teacher=teacher, seed=seed, device="cpu", **hyperparams)
    return ALGOS[algo](env=env, seed=seed, device="cpu", **hyperparams)


def sim_student(env_id: str, kind: str, seed: int, budget: int, teacher: Any) -> Any:
    """
    A student distilled in the nominal env ("sim", where the teacher is right): DistillDQN regressing the teacher's
    Q-values (``distill_loss="mse"``, so that its Q-values are calibrated for the TD term it meets in the real env; its
    ``recipe="auto"`` chooses ``"policy_distillation"`` there), or DistillPPO with the zoo's PPO settings.

    :param env_id: gymnasium id of the nominal env
    :param kind: ``"dqn"`` or ``"ppo"``
    :param seed: seed
    :param budget: sim env steps
    :param teacher: the nominal env's teacher
    :return: the trained student
    """
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import DistillDQN

    if kind == "dqn":
        model = DistillDQN(
            "MlpPolicy",
            make_vec_env(env_id, seed=seed),
            teacher=teacher,
            distill_loss="mse",
            policy_kwargs=dict(net_arch=NET_ARCH),
            seed=seed,
            device="cpu",
        )
    else:
        nominal = lambda n_envs: make_vec_env(env_id, n_envs=n_envs, seed=seed)  # noqa: E731
        model = _zoo_model("ppo", env_id, nominal, seed, NET_ARCH, teacher)
    return model.learn(budget)


def sim_to_real_job(shift: str, method: str, seed: int, episodes: int, budget_scale: float = 1.0) -> dict[str, Any]:
    """
    One run of the sim-to-real comparison.

    :param shift: a key of :data:`SHIFTS`
    :param method: a key of :data:`SIM_TO_REAL_METHODS`
    :param seed: seed
    :param episodes: evaluation episodes
    :param budget_scale: multiplies the budget (smoke tests)
    :return: the run's curve, the steps to the threshold and what the student's ``"auto"`` chose (the methods of
        :data:`SIM_FIRST`: also their sim steps, not counted, their return in sim and their real return before learning)
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_distill import DistillDQN, load_teacher

    from ..runners import setup_worker

    setup_worker()
    env_id = SHIFTS[shift]["env"]
    teacher = load_teacher(f"dqn/{env_id}", device="cpu")
    eval_env = shifted_env(shift, seed=1000 + seed)
    threshold = _threshold(env_id)
    dqn_budget, ppo_budget = (max(int(b * budget_scale), 500) for b in SIM_TO_REAL_BUDGETS[env_id])
    extra: dict[str, Any] = {}
    if method == "teacher":
        returns, _ = evaluate_policy(teacher, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
        curve = [dict(step=0, mean=float(np.mean(returns)), std=float(np.std(returns)))]
    else:
        algo = SIM_TO_REAL_METHODS[method][1]
        start = None  # the weights the real-env learner starts from
        if method in SIM_FIRST:
            kind = "ppo" if method == "sim_student_ppo" else "dqn"
            sim_budget = max(int(SIM_BUDGETS[env_id][kind == "ppo"] * budget_scale), 500)
            student = sim_student(env_id, kind, seed, sim_budget, teacher)
            sim_returns, _ = evaluate_policy(
                student, make_vec_env(env_id, seed=2000 + seed), n_eval_episodes=episodes, return_episode_rewards=True
            )
            real_returns, _ = evaluate_policy(student, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
            extra.update(sim_steps=sim_budget, sim_return=float(np.mean(sim_returns)), zero_shot=float(np.mean(real_returns)))
            start = student.policy
        elif method == "finetune":  # the teacher's weights (its optimizer and replay data are not saved with it)
            start = teacher.policy
        if method in ("distill_dqn", "sim_student"):
            model = DistillDQN(
                "MlpPolicy",
                shifted_env(shift, seed=seed),
                teacher=teacher,
                policy_kwargs=dict(net_arch=NET_ARCH),
                seed=seed,
                device="cpu",
            )
        else:
            assert algo is not None
            model = _zoo_model(
                algo,
                env_id,
                lambda n_envs: shifted_env(shift, n_envs=n_envs, seed=seed),
                seed,
                None if method == "finetune" else NET_ARCH,
                teacher if method in ("distill_ppo", "sim_student_ppo") else None,
            )
        if start is not None:
            model.policy.load_state_dict(start.state_dict())
        curve = _curve(model, ppo_budget if algo == "ppo" else dqn_budget, eval_env, episodes)
        measurement = getattr(model, "reference_measurement", None)
        if measurement is not None:
            extra.update(reference_where=measurement.where, reference_env_steps=measurement.env_steps)
        extra["choice"] = getattr(model, "recipe_choice", None) or getattr(model, "distill_coef_choice", None)
    reached = next((point["step"] for point in curve if point["mean"] >= threshold), None)
    if reached is not None and method != "teacher":
        reached += extra.get("reference_env_steps", 0)
    if extra.get("zero_shot", -np.inf) >= threshold:  # the sim student is there before any real step
        reached = 0
    return dict(
        shift=shift,
        method=method,
        seed=seed,
        threshold=threshold,
        curve=curve,
        final=curve[-1]["mean"],
        steps_to_threshold=reached,
        **extra,
    )


# ----------------------------------------------------------------------------------------------- privileged
def _blind_env(env_id: str, frames: int, seed: int) -> Any:
    from gymnasium.wrappers import FrameStackObservation
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill.robustness import StudentObservation, hide_velocities

    def wrap(env: Any) -> Any:
        return FrameStackObservation(StudentObservation(env, hide_velocities(env_id)), stack_size=frames)

    return make_vec_env(env_id, seed=seed, wrapper_class=wrap)


def privileged_job(
    env_id: str, frames: int, budget: int, seed: int, episodes: int, ema_tau: float | None = None
) -> dict[str, Any]:
    """
    A DistillDQN student (defaults, ``[64, 64]``, and ``ema_tau``) that sees the last ``frames`` frames without the
    velocities; the bundled teacher sees the full state. Evaluated along training on the same partial view.

    :param env_id: gymnasium id (a key of ``VELOCITY_INDICES``)
    :param frames: frames the student stacks
    :param budget: env steps
    :param seed: seed
    :param episodes: evaluation episodes
    :param ema_tau: DistillDQN's average of the student's weights (``None``: none)
    :return: its curve
    """
    from sb3_distill import DistillDQN, load_teacher

    from ..runners import setup_worker

    setup_worker()
    teacher = load_teacher(f"dqn/{env_id}", device="cpu")
    env = _blind_env(env_id, frames, seed)
    model = DistillDQN("MlpPolicy", env, teacher=teacher, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed, ema_tau=ema_tau)
    curve = _curve(model, budget, _blind_env(env_id, frames, 1000 + seed), episodes)
    # ema_acting: which weights chose the env steps during learn() (DistillDQN's design since issue 21: θ, not θ̄)
    extra = dict(ema_tau=ema_tau, ema_acting="trained") if ema_tau else {}
    return dict(env=env_id, frames=frames, seed=seed, budget=budget, curve=curve, final=curve[-1]["mean"], **extra)


# ----------------------------------------------------------------------------------------------- robust students
def noise_levels(levels: tuple[float, ...], scale: Any, space: Any, seed: int) -> Any:
    """
    :return: Gaussian observation noise whose σ (in units of ``scale``) is drawn from ``levels`` at every episode
    """
    from sb3_distill.robustness import GaussianNoise

    class NoiseLevels(GaussianNoise):
        def reset(self) -> None:
            self.std = self.rng.choice(levels) * np.asarray(scale)

    return NoiseLevels(max(levels), scale, space, seed=seed)


def dynamics_variants(env_id: str, every_point: bool = False) -> list[dict[str, float]]:
    """
    :param env_id: gymnasium id (a key of the robustness suite's ``GRIDS``)
    :param every_point: one variant per point of the grid, the nominal dynamics (``{}``) as often as the grid has them
        (the HalfCheetah students'), instead of once
    :return: the variants of :class:`~sb3_distill.robustness.RandomDynamics` that cover the env's dynamics grid: the
        nominal dynamics and every level ≠ 1 of each of the grid's parameters, one parameter changed at a time
    """
    from .robustness import GRIDS

    variants: list[dict[str, float]] = [] if every_point else [{}]
    for perturbation, levels, _ in GRIDS[env_id].get("dynamics", []):
        kind, _, parameter = perturbation.partition(":")
        if kind != "dynamics":
            raise ValueError(
                f"{env_id}'s dynamics grid changes {perturbation!r}, an argument of gymnasium.make: RandomDynamics "
                "changes physical constants in place (classic control, MuJoCo); train this env's students on noise."
            )
        variants += [{parameter: float(level)} if level != 1.0 else {} for level in levels if every_point or level != 1.0]
    return variants


def robust_student_job(env_id: str, noise: str, budget: int, seed: int, episodes: int, recipe: str = "auto") -> dict[str, Any]:
    """
    A DistillDQN student (defaults, ``[64, 64]``) trained on noisy observations (:data:`ROBUST_NOISE`; with
    ``+dynamics`` in shifted dynamics too, drawn per episode from :func:`dynamics_variants`), the teacher labelling the
    clean state; then its noise grid (``evaluate_robustness``, the suite's scale) and the env's dynamics grid (the
    robustness suite's ``GRIDS``), the teacher measured on both.

    :param env_id: gymnasium id
    :param noise: a key of :data:`ROBUST_NOISE`
    :param budget: env steps
    :param seed: seed
    :param episodes: episodes per noise level
    :param recipe: DistillDQN's ``recipe``
    :return: the student's rows and the teacher's (same grids, episodes and seeds), what ``recipe="auto"`` chose
    """
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import DistillDQN, load_teacher
    from sb3_distill.robustness import RandomDynamics, StudentObservation, evaluate_robustness, observation_scale

    from ..runners import setup_worker
    from .robustness import robustness_rows

    setup_worker()
    teacher = load_teacher(f"dqn/{env_id}", device="cpu")
    scale = observation_scale(lambda: gym.make(env_id))
    variants = dynamics_variants(env_id) if noise.endswith("+dynamics") else None

    def perturbed(env: Any) -> Any:
        if variants:  # the teacher reads the state of whatever dynamics the episode has: a non-expert teacher
            env = RandomDynamics(env, variants, seed=seed, tell_teacher=False)
        return StudentObservation(env, noise_levels(ROBUST_NOISE[noise], scale, env.observation_space, seed))

    model = DistillDQN(
        "MlpPolicy",
        make_vec_env(env_id, seed=seed, wrapper_class=perturbed),
        teacher=teacher,
        policy_kwargs=dict(net_arch=NET_ARCH),
        seed=seed,
        recipe=recipe,
    )
    model.learn(budget)
    grids = {}
    for name, agent in (("student", model), ("teacher", teacher)):
        grids[name] = evaluate_robustness(agent, env_id, "obs_noise", list(NOISE_LEVELS), episodes, 0)
        for row in grids[name]:
            row.pop("returns")
        grids[f"{name} dynamics"] = robustness_rows(agent, env_id, episodes, grids=("dynamics",))
    return dict(
        env=env_id,
        noise=noise,
        seed=seed,
        budget=budget,
        rows=grids["student"],
        teacher_rows=grids["teacher"],
        dynamics_rows=grids["student dynamics"],
        teacher_dynamics_rows=grids["teacher dynamics"],
        **(dict(recipe=recipe) if recipe != "auto" else {}),
        recipe_choice=model.recipe_choice,
    )


# ----------------------------------------------------------------------------------------------- several teachers
def force_teacher(factor: float, folder: Path, seed: int = 0) -> str:
    """
    The CartPole teacher of the push force × ``factor``, trained by ``scripts/train_teachers.py --dynamics
    force_mag=FACTOR`` (rl-zoo3, the zoo's DQN hyperparameters) into ``folder`` unless it is there already (× 1: the
    bundled teacher, trained by the same script). One process at a time trains (a lock in ``folder``).

    :param factor: the push force's factor
    :param folder: where the teachers are kept (``train_teachers.py --out``)
    :param seed: seed of the teacher's training
    :return: the teacher's spec (a run folder, or the bundled zoo id)
    """
    import fcntl

    if factor == 1.0:
        return "dqn/CartPole-v1"
    from scripts import train_teachers

    tag = train_teachers.dynamics_tag({"force_mag": factor})
    run = train_teachers.teacher_dir(folder / train_teachers.DYNAMICS_SUBDIR / tag, "dqn", "CartPole-v1")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "CartPole-v1.zip").is_file():
            argv = ["--only", "dqn/CartPole-v1", "--dynamics", f"force_mag={factor:g}", "--out", str(folder)]
            code = train_teachers.main([*argv, "--seed", str(seed), "--n-eval-episodes", "10"])
            if code == 2:
                raise RuntimeError(f"scripts/train_teachers.py {' '.join(argv)} refused to run (exit 2)")
    return str(run)


def _stacked(env: Any, frames: int) -> Any:
    from gymnasium.wrappers import FrameStackObservation

    return FrameStackObservation(env, stack_size=frames) if frames > 1 else env


def multi_teacher_job(budget: int, seed: int, episodes: int, teachers_dir: str, frames: int = 2) -> dict[str, Any]:
    """
    Teachers of CartPole's push force × each of :data:`FORCE_TEACHERS` (trained there by ``train_teachers.py
    --dynamics``; × 1 the bundled one) and PolicyDistill students (``[64, 64]``, defaults, the last ``frames`` frames)
    trained on a push force drawn per episode among the teachers' (``RandomDynamics``): labelled by the expert of the
    episode's force (``ExpertTeacher``) or by all teachers averaged (equal weights).
    Every agent's returns over :data:`FORCE_GRID`.

    :param budget: the students' env steps
    :param seed: seed of the students
    :param episodes: evaluation episodes per grid point
    :param teachers_dir: where the teachers are trained (once; later jobs load them)
    :param frames: frames each student stacks (from which it can tell the push force)
    :return: the grid of every agent, and the teachers' ``teachers.json`` entries
    """
    import json

    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import PolicyDistill, load_teacher
    from sb3_distill.robustness import ExpertTeacher, RandomDynamics, evaluate_robustness

    from ..runners import setup_worker

    setup_worker()
    folder = Path(teachers_dir)
    specs = {factor: force_teacher(factor, folder) for factor in FORCE_TEACHERS}
    agents: dict[str, Any] = {f"teacher × {factor:g}": load_teacher(spec, device="cpu") for factor, spec in specs.items()}
    experts = list(agents.values())
    variants = [{"force_mag": factor} if factor != 1.0 else {} for factor in FORCE_TEACHERS]

    def random_force(tell_teacher: bool) -> Any:
        return lambda env: _stacked(RandomDynamics(env, variants, seed=seed, tell_teacher=tell_teacher), frames)

    # The experts' student: the env tells the teacher the episode's force; the averaged one: every teacher, every state
    students = {
        "student of the experts (each labels its force)": ExpertTeacher(experts, device="cpu"),
        "student of all teachers (averaged)": experts,
    }
    for name, teacher in students.items():
        wrap = random_force(tell_teacher=isinstance(teacher, ExpertTeacher))
        env = make_vec_env("CartPole-v1", seed=seed, wrapper_class=wrap)
        agents[name] = PolicyDistill("MlpPolicy", env, teacher=teacher, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed)
        agents[name].learn(budget)
    grids = {}
    for name, agent in agents.items():
        env = "CartPole-v1" if name.startswith("teacher") else _stacked(gym.make("CartPole-v1"), frames)
        rows = evaluate_robustness(agent, env, "dynamics:force_mag", list(FORCE_GRID), episodes, 0)
        grids[name] = [dict(level=row["level"], mean=row["mean"], std=row["std"]) for row in rows]
    index = folder / "teachers.json"
    trained = [entry for entry in json.loads(index.read_text())] if index.is_file() else []
    return dict(seed=seed, budget=budget, frames=frames, variants=list(FORCE_TEACHERS), grids=grids, teachers=trained)


# ----------------------------------------------------------------------------------------------- HalfCheetah
def halfcheetah_noise_job(
    zoo_dir: str, budget: int, seed: int, episodes: int, sigma: float = 0.1, frames: int = 1, share: float = 0.1
) -> dict[str, Any]:
    """
    The MuJoCo suite's PolicyDistill student (its settings; ``share`` of the teacher's acting parameters, ~10% by
    default), trained on HalfCheetah with absolute Gaussian observation noise σ (the teacher labels the clean state),
    against the SAC teacher's clean return. With ``frames`` > 1 the student sees its last noisy frames (independent
    noise on each: it can average it out), the teacher the clean state.

    :param zoo_dir: the folder holding ``sac/HalfCheetah-v3_1``
    :param budget: env steps
    :param seed: seed
    :param episodes: evaluation episodes
    :param sigma: absolute noise σ
    :param frames: frames the student stacks
    :param share: the student's acting parameters as a share of the teacher's (its hidden width is chosen for the
        stacked input), in (0, 1]
    :return: the teacher's clean and noisy returns, the student's noisy return, its size
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    from sb3_distill.robustness import GaussianNoise, StudentObservation

    from ..runners import setup_worker

    setup_worker()

    def noisy(env: Any) -> Any:
        return StudentObservation(env, GaussianNoise(sigma, 1.0, env.observation_space, seed=seed))

    def student_view(env: Any) -> Any:
        return _stacked(noisy(env), frames)

    teacher, train_env, model = _halfcheetah_student(zoo_dir, seed, share, student_view)
    model.learn(budget)
    results = {}
    for name, agent, wrapper in (
        ("teacher clean", teacher, None),
        ("teacher noisy", teacher, noisy),
        ("student noisy", model, student_view),
    ):
        eval_env = make_vec_env("HalfCheetah-v5", seed=1000 + seed, wrapper_class=wrapper)
        if agent is model:
            eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
            sync_envs_normalization(train_env, eval_env)
        returns, _ = evaluate_policy(agent, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
        results[name] = dict(mean=float(np.mean(returns)), std=float(np.std(returns)))
    size = _student_size(model, teacher, share)
    return dict(seed=seed, budget=budget, sigma=sigma, frames=frames, returns=results, student=size)


def _halfcheetah_student(zoo_dir: str, seed: int, share: float, student_view: Any) -> tuple[Any, Any, Any]:
    """
    The MuJoCo suite's SAC HalfCheetah teacher and its PolicyDistill student (the suite's settings; ``share`` of the
    teacher's acting parameters, sized on the student's flattened, possibly stacked, input), not trained yet.

    :param zoo_dir: the folder holding ``sac/HalfCheetah-v3_1``
    :param seed: seed (of the student and of its env)
    :param share: the student's acting parameters as a share of the teacher's, in (0, 1]
    :param student_view: the gym wrapper making the student's view (noise, stacked frames...; the teacher gets the clean
        state through ``StudentObservation``'s channel)
    :return: the teacher, the student's training env (its own ``VecNormalize``) and the student
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from ..suite import get_suite

    mujoco = get_suite("mujoco")
    teacher = mujoco.load_teacher("HalfCheetah-v5", zoo_dir)
    # The MuJoCo suite's student keeps its own VecNormalize statistics (observations only), above its view; the
    # teacher gets the clean raw state through StudentObservation's channel and normalizes it itself
    train_env = VecNormalize(make_vec_env("HalfCheetah-v5", seed=seed, wrapper_class=student_view), norm_reward=False)
    model = mujoco.build_model(f"policy_distill:{share * 100:g}%", "HalfCheetah-v5", train_env, teacher, seed, {})
    return teacher, train_env, model


def _student_size(model: Any, teacher: Any, share: float) -> dict[str, Any]:
    from ..measure import acting_and_critic_parameters

    params = acting_and_critic_parameters(model)[0]
    return dict(share=share, net_arch=model.policy.net_arch, params=params, params_ratio=params / teacher.num_parameters)


def stacked_robustness_rows(agent: Any, env_id: str, frames: int, n_episodes: int, seed: int = 0) -> list[dict[str, Any]]:
    """
    The robustness suite's ``robustness_rows`` for an agent that acts on its last ``frames`` frames (a model trained
    under ``VecNormalize``: ``evaluate_robustness`` applies its frozen statistics to what it sees), the perturbation
    applied *under* the frame stack, as in training: each frame gets its noise once, when it is observed.

    ``evaluate_robustness`` adds its ``obs_noise`` on top of the env it is given, so on a stacked env it would draw
    new noise for every stacked frame at every step; the noise probes therefore run as a perturbation of their own
    (``Perturbation(wrap=...)``: ``GaussianNoise`` of the grid's σ and scale on the plain env, the frames stacked above
    it, seeded as the named ``obs_noise``: the same draws as the teacher's grid). The dynamics probes run the named
    perturbation on a stacked env (the change is made on ``env.unwrapped``).

    :param agent: the model
    :param env_id: gymnasium id (a key of ``GRIDS``)
    :param frames: frames the agent stacks
    :param n_episodes: episodes per level
    :param seed: seed of the envs and perturbations (``robustness_rows``'s)
    :return: rows as ``robustness_rows``'s (``grid``, ``probe``, ``perturbation``, ``level``, ``mean``, ``std``...)
    """
    import gymnasium as gym

    from sb3_distill.robustness import (
        GaussianNoise,
        Perturbation,
        StudentObservation,
        evaluate_robustness,
        get_perturbation,
        observation_scale,
    )

    from .robustness import GRIDS, probe_name

    def plain(**kwargs: Any) -> Any:
        return gym.make(env_id, **kwargs)

    def stacked(**kwargs: Any) -> Any:
        return _stacked(gym.make(env_id, **kwargs), frames)

    rows = []
    for grid, probes in GRIDS[env_id].items():
        for name, levels, options in probes:
            perturbation, env = get_perturbation(name), stacked
            if name == "obs_noise":
                # evaluate_robustness's scale for obs_noise: observation_scale(env, scale or "auto", seed=seed)
                scale = observation_scale(plain, options.get("scale", "auto"), seed=seed)

                def wrap(inner: Any, level: float, noise_seed: int, scale: Any = scale) -> Any:
                    noise = GaussianNoise(level, scale, inner.observation_space, noise_seed)
                    return _stacked(StudentObservation(inner, noise), frames)

                perturbation = Perturbation("obs_noise under the frame stack", perturbation.description, wrap=wrap)
                env = plain
            elif perturbation.needs_scale or perturbation.make_kwargs is not None:
                raise ValueError(f"{name}: not measured under a frame stack here (noise and dynamics grids only).")
            for row in evaluate_robustness(agent, env, perturbation, list(levels), n_episodes, seed):
                row.pop("returns")
                rows.append(dict(row, perturbation=name, grid=grid, probe=probe_name(name, options)))
    return rows


def halfcheetah_robust_job(
    zoo_dir: str, variant: str, budget: int, seed: int, episodes: int, frames: int = 4, share: float = 0.1
) -> dict[str, Any]:
    """
    A robust HalfCheetah student: the MuJoCo suite's PolicyDistill student (``share`` of the teacher's acting
    parameters, its own ``VecNormalize``, its last ``frames`` frames) trained on perturbed experience, the SAC teacher
    labelling the clean state (``StudentObservation``): per episode a Gaussian observation noise σ drawn from
    :data:`HALFCHEETAH_ROBUST`'s levels (relative to the scale of the suite's noise grid), and with ``variant``
    ``"noise_dynamics"`` also the dynamics drawn among the points of the suite's dynamics grid (``RandomDynamics``,
    the teacher not told). Then the student and the teacher on the suite's noise and dynamics grids of HalfCheetah
    (same points, episodes and env seeds; the student's perturbation under its frame stack and VecNormalize).

    :param zoo_dir: the folder holding ``sac/HalfCheetah-v3_1``
    :param variant: a key of :data:`HALFCHEETAH_ROBUST_VARIANTS`
    :param budget: env steps
    :param seed: seed
    :param episodes: evaluation episodes per grid point
    :param frames: frames the student stacks
    :param share: the student's acting parameters as a share of the teacher's, in (0, 1]
    :return: the student's and the teacher's grid rows, the training's noise levels and dynamics variants, its size
    """
    import gymnasium as gym

    from sb3_distill.robustness import RandomDynamics, StudentObservation, observation_scale

    from ..runners import setup_worker
    from .robustness import robustness_rows

    if variant not in HALFCHEETAH_ROBUST_VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}: use one of {', '.join(HALFCHEETAH_ROBUST_VARIANTS)}.")
    setup_worker()
    env_id = "HalfCheetah-v5"
    levels = tuple(HALFCHEETAH_ROBUST["noise"])
    scale = observation_scale(lambda: gym.make(env_id))  # the noise grid's: "auto", seed 0 (evaluate_robustness's)
    variants = dynamics_variants(env_id, every_point=True) if variant == "noise_dynamics" else []

    def student_view(env: Any) -> Any:
        if variants:
            env = RandomDynamics(env, variants, seed=seed, tell_teacher=False)
        return _stacked(StudentObservation(env, noise_levels(levels, scale, env.observation_space, seed)), frames)

    teacher, _, model = _halfcheetah_student(zoo_dir, seed, share, student_view)
    model.learn(budget)
    return dict(
        env=env_id,
        variant=variant,
        seed=seed,
        budget=budget,
        frames=frames,
        noise=list(levels),
        dynamics=variants,
        episodes=episodes,
        rows=stacked_robustness_rows(model, env_id, frames, episodes),
        teacher_rows=robustness_rows(teacher, env_id, episodes),
        student=_student_size(model, teacher, share),
    )


# ----------------------------------------------------------------------------------------------- plan and report
#: part → its jobs' settings: (what, seeds (None: --seeds), env steps)
PRIVILEGED = (("CartPole-v1", 2, 5_000), ("LunarLander-v3", 2, 100_000))
#: the privileged students' average of their weights (DistillDQN's ``ema_tau``): without it the CartPole student swung
#: between 500 and 109 from one 500-step window to the next (it cannot copy the teacher from its view: it agrees with
#: it on 0.56-0.76 of its own states, where a full-state student agrees on 0.94-1.0)
PRIVILEGED_EMA_TAU = 0.01
#: the robust students: (env, training perturbation, env steps[, DistillDQN's recipe])
ROBUST: tuple[tuple[Any, ...], ...] = (
    ("CartPole-v1", "fixed_0.2", 15_000),
    ("CartPole-v1", "per_episode", 15_000),
    ("Acrobot-v1", "per_episode", 15_000),
    ("MountainCar-v0", "per_episode", 15_000),
    ("LunarLander-v3", "per_episode", 100_000),  # the privileged LunarLander students' budget
    ("LunarLander-v3", "per_episode_low", 100_000),
    # domain randomization: noise and dynamics drawn per episode (LunarLander's dynamics are arguments of
    # gymnasium.make, which RandomDynamics does not change)
    ("CartPole-v1", "per_episode+dynamics", 15_000),
    ("Acrobot-v1", "per_episode+dynamics", 15_000),
    ("MountainCar-v0", "per_episode+dynamics", 15_000),
    # the teacher plays -133 in MountainCar's randomized dynamics, below the env's threshold (-110): "auto" chooses
    # "outgrow", whose TD learning did not find the flag in 15,000 env steps on 2 seeds of 3; imitation, chosen here
    ("MountainCar-v0", "per_episode+dynamics", 15_000, "policy_distillation"),
)
MULTI_TEACHER = dict(budget=20_000, frames=2)
HALFCHEETAH = dict(budget=20_000, frames=4, share=0.1)
#: halfcheetah_robust: the student's training (σ relative to the noise grid's scale, drawn per episode: the noise grid's
#: relative levels), frames and size as halfcheetah_noise's
HALFCHEETAH_ROBUST = dict(budget=20_000, frames=4, share=0.1, noise=NOISE_LEVELS)
#: halfcheetah_robust's variants → what the student trains on
HALFCHEETAH_ROBUST_VARIANTS = {
    "noise": "noise σ drawn per episode",
    "noise_dynamics": "noise σ and the dynamics grid's point drawn per episode",
}
PARTS = ("grids", "sim_to_real", "privileged", "robust", "multi_teacher", "halfcheetah_noise", "halfcheetah_robust")


def jobs(
    parts: list[str],
    envs: list[str],
    shifts: list[str],
    seeds: list[int],
    episodes: int,
    zoo_dir: str,
    scale: float,
    out: str = "runs",
    frames: int | None = None,
    methods: list[str] | None = None,
    student_share: float | None = None,
    ema_tau: float | None = PRIVILEGED_EMA_TAU,
    robust_noise: list[str] | None = None,
    hc_robust_variants: list[str] | None = None,
) -> list[Any]:
    """
    :param parts: the parts to run (:data:`PARTS` but ``"grids"``)
    :param envs: the envs of the privileged and robust students (the others are not run)
    :param shifts: the sim-to-real shifts (keys of :data:`SHIFTS`)
    :param seeds: seeds of every run
    :param episodes: evaluation episodes
    :param zoo_dir: the teachers' folder (HalfCheetah's)
    :param scale: multiplies every budget (smoke tests)
    :param out: the run's folder (the dynamics-teachers are trained into ``OUT/dynamics-teachers``)
    :param frames: frames the students of ``multi_teacher`` and ``halfcheetah_noise`` stack (default: the parts' own)
    :param methods: the sim-to-real methods (keys of :data:`SIM_TO_REAL_METHODS`; default: all)
    :param student_share: the ``halfcheetah_noise`` student's acting parameters as a share of the teacher's (default:
        the part's own)
    :param ema_tau: the privileged students' ``ema_tau`` (``None``: no average)
    :param robust_noise: the robust students' training perturbations (keys of :data:`ROBUST_NOISE`; default: all)
    :param hc_robust_variants: ``halfcheetah_robust``'s variants (keys of :data:`HALFCHEETAH_ROBUST_VARIANTS`; default:
        all); ``frames`` and ``student_share`` apply to it too
    :return: the jobs, one process each
    """
    from ..suite import Job

    def steps(budget: int) -> int:
        return max(int(budget * scale), 500)

    found: list[Job] = []
    for seed in seeds:
        if "sim_to_real" in parts:
            for shift in shifts:
                for method in methods or SIM_TO_REAL_METHODS:
                    args, name = (shift, method, seed, episodes, scale), f"sim-to-real {shift} {method} seed {seed}"
                    found.append(Job(sim_to_real_job, args, name, "sim_to_real", 10_000, seed))
        if "privileged" in parts:
            for env_id, frames, budget in (entry for entry in PRIVILEGED if entry[0] in envs):
                args = (env_id, frames, steps(budget), seed, episodes, ema_tau)
                found.append(Job(privileged_job, args, f"privileged {env_id} seed {seed}", "privileged", budget, seed))
        if "robust" in parts:
            for env_id, noise, budget, *recipe in ROBUST:
                if env_id not in envs or noise not in (robust_noise or ROBUST_NOISE):
                    continue
                args = (env_id, noise, steps(budget), seed, episodes, *recipe)
                name = f"robust {env_id} {' '.join([noise, *recipe])} seed {seed}"
                found.append(Job(robust_student_job, args, name, "robust_students", budget, seed))
        if "multi_teacher" in parts:
            teachers_dir = str(Path(out) / "dynamics-teachers")
            args = (steps(MULTI_TEACHER["budget"]), seed, episodes, teachers_dir, frames or MULTI_TEACHER["frames"])
            found.append(Job(multi_teacher_job, args, f"multi-teacher seed {seed}", "multi_teacher", 20_000, seed))
        if "halfcheetah_noise" in parts:
            share = student_share or HALFCHEETAH["share"]
            args = (zoo_dir, steps(HALFCHEETAH["budget"]), seed, min(episodes, 5), 0.1, frames or HALFCHEETAH["frames"], share)
            name = f"HalfCheetah noise seed {seed}"
            found.append(Job(halfcheetah_noise_job, args, name, "halfcheetah_noise", 40_000, seed))
        if "halfcheetah_robust" in parts:
            found += _halfcheetah_robust_jobs(zoo_dir, hc_robust_variants, steps, seed, episodes, frames, student_share)
    return found


def _halfcheetah_robust_jobs(
    zoo_dir: str, variants: list[str] | None, steps: Any, seed: int, episodes: int, frames: int | None, share: float | None
) -> list[Any]:
    from ..suite import Job

    found = []
    for variant in variants or HALFCHEETAH_ROBUST_VARIANTS:
        budget = steps(HALFCHEETAH_ROBUST["budget"])
        args = (zoo_dir, variant, budget, seed, episodes, frames or HALFCHEETAH_ROBUST["frames"])
        name = f"HalfCheetah robust {variant} seed {seed}"
        found.append(
            Job(
                halfcheetah_robust_job, (*args, share or HALFCHEETAH_ROBUST["share"]), name, "halfcheetah_robust", 60_000, seed
            )
        )
    return found


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    from ..report import table

    return table(header, rows)


def _seeds(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(run["seed"]) for run in sorted(runs, key=lambda run: run["seed"]))


def _steps(value: int | None, budget: int | None = None) -> str:
    return f"{value:,}" if value is not None else (f"never (≤ {budget:,})" if budget else "never")


def _reached(run: dict[str, Any]) -> int | None:
    """Real env steps to the threshold: 0 for a student distilled in sim that reaches it there before any real step."""
    return 0 if run.get("zero_shot", -np.inf) >= run["threshold"] else run["steps_to_threshold"]


def _median_steps(runs: list[dict[str, Any]]) -> float | None:
    """The median of the seeds' steps to the threshold, a seed that never reached it counting as infinite."""
    values = sorted(np.inf if _reached(run) is None else _reached(run) for run in runs)
    median = float(np.median(values)) if values else np.inf
    return None if not np.isfinite(median) else median


def report(results: dict[str, Any]) -> list[str]:
    """
    :param results: the content of ``results.json``
    :return: the tables of the parts present
    """
    lines: list[str] = []
    if results.get("sim_to_real"):
        lines += ["", "### Sim-to-real: a student in the shifted env, the teacher from the nominal one", ""]
        lines += [
            "Env steps in the shifted env until an evaluation (deterministic) reaches the env's reward threshold; the "
            'students\' steps include the episodes their `"auto"` choice played on a copy of the shifted env to measure '
            "the teacher there. The students distilled in sim first (the nominal env, where the teacher is right) count "
            "their real steps only: sim steps are free on a real system (reported apart). Median over seeds (a seed "
            "that never reached it counts as infinite). Target (issue 21): the student in ≤ 20% of the from-scratch "
            "steps and ≤ 50% of the fine-tuned teacher's.",
        ]
        for shift in dict.fromkeys(run["shift"] for run in results["sim_to_real"]):
            runs = [run for run in results["sim_to_real"] if run["shift"] == shift]
            by_method = {m: [run for run in runs if run["method"] == m] for m in SIM_TO_REAL_METHODS}
            threshold = runs[0]["threshold"]
            lines += ["", f"#### {SHIFTS[shift]['label']} (threshold {threshold:g})", ""]
            rows = []
            for method, method_runs in by_method.items():
                if not method_runs:
                    continue
                budget = max(point["step"] for run in method_runs for point in run["curve"])
                finals = [run["final"] for run in method_runs]
                per_seed = ", ".join(_steps(_reached(run)) for run in sorted(method_runs, key=lambda r: r["seed"]))
                median = _median_steps(method_runs)
                sim = ""
                if method in SIM_FIRST:
                    sim_returns = [run["sim_return"] for run in method_runs]
                    before = [run["zero_shot"] for run in method_runs]
                    sim = (
                        f"{method_runs[0]['sim_steps']:,} (return in sim {np.mean(sim_returns):.0f} ± "
                        f"{np.std(sim_returns):.0f}; in real before learning there {np.mean(before):.0f} ± "
                        f"{np.std(before):.0f})"
                    )
                choice = method_runs[0].get("choice") or ""
                chose = choice.split(":")[0].replace("recipe='auto' chose ", "").replace("distill_coef='auto' chose ", "")
                rows.append(
                    [
                        SIM_TO_REAL_METHODS[method][0],
                        _seeds(method_runs),
                        f"{budget:,}",
                        per_seed,
                        _steps(None if median is None else int(median), budget),
                        f"{np.mean(finals):.1f} ± {np.std(finals):.1f}",
                        sim,
                        chose,
                    ]
                )
            header = ["method", "seeds", "budget", "steps to threshold, per seed", "median", "final return"]
            lines += _table([*header, "sim steps, not counted", "auto chose (real)"], rows)
            lines += ["", *_sim_to_real_verdicts(by_method)]
    if results.get("privileged"):
        lines += ["", "### Privileged teachers: students without velocities", ""]
        lines += _privileged_report(results["privileged"], results.get("teachers", {}))
    if results.get("robust_students"):
        lines += ["", "### Robust students: trained on perturbed experience, the teacher on the clean state", ""]
        lines += [
            "Mean normalized score over the noise grid σ ∈ {0, 0.05, 0.1, 0.2, 0.3} (relative to each observation's "
            "scale) and over the env's dynamics grid (the robustness suite's, where measured), normalized by the "
            "teacher's nominal return (the suite's teacher record); the teacher measured on the same grids, episodes "
            "and seeds in the same job."
        ]
        lines += _robust_report(results["robust_students"], results.get("teachers", {}))
    if results.get("multi_teacher"):
        lines += ["", "### Several dynamics-teachers into one student (CartPole, push force grid)", ""]
        lines += _multi_teacher_report(results["multi_teacher"])
    if results.get("halfcheetah_noise"):
        lines += ["", "### HalfCheetah under observation noise σ = 0.1 (absolute), the teacher on the clean state", ""]
        rows = []
        for run in results["halfcheetah_noise"]:
            returns = run["returns"]
            clean = returns["teacher clean"]["mean"]
            size = run.get("student") or _first_halfcheetah_size(run.get("frames", 1), results.get("teachers", {}))
            rows.append(
                [
                    str(run["seed"]),
                    f"{size['params']:,} ({size['params_ratio']:.0%})" if size else "~10%",
                    str(run.get("frames", 1)),
                    f"{run['budget']:,}",
                    f"{clean:.0f}",
                    f"{returns['teacher noisy']['mean']:.0f}",
                    f"{returns['student noisy']['mean']:.0f} ± {returns['student noisy']['std']:.0f}",
                    f"{returns['student noisy']['mean'] / clean:.2f}",
                    "met" if returns["student noisy"]["mean"] >= 0.9 * clean else "**missed**",
                ]
            )
        header = [
            "seed",
            "student's acting params (of teacher's)",
            "student's frames",
            "env steps",
            "teacher clean",
            "teacher noisy",
            "student noisy",
            "student / teacher clean",
            "≥ 0.9",
        ]
        lines += _table(header, rows)
    if results.get("halfcheetah_robust"):
        lines += ["", "### HalfCheetah: robust students on the noise and dynamics grids", ""]
        lines += _halfcheetah_robust_report(results["halfcheetah_robust"], results.get("teachers", {}))
    return lines


def _scores(rows: list[dict[str, Any]], record: dict[str, Any]) -> list[float]:
    """:return: the rows' mean returns normalized by the teacher record's random and nominal returns"""
    random_return, teacher_return = record["random_return"], record["teacher_return"]
    return [(row["mean"] - random_return) / (teacher_return - random_return) for row in rows]


def _robust_report(runs: list[dict[str, Any]], teachers: dict[str, Any]) -> list[str]:
    """
    :param runs: the robust students' records
    :param teachers: the suite's teacher records (their nominal and random returns normalize the grids)
    :return: per seed the student's and the teacher's grid means (noise; dynamics where measured), then the means
        over seeds
    """
    rows = []
    groups: dict[tuple[str, str, str, int], list[tuple[float, float | None, int]]] = {}
    for run in sorted(runs, key=_robust_order):
        record = teachers.get(run["env"])
        if record is None:
            continue
        training = run["noise"] + (f", {run['recipe']}" if run.get("recipe") else "")
        row = [run["env"], training, str(run["seed"]), f"{run['budget']:,}"]
        for grid, student_key, teacher_key in (
            ("noise", "rows", "teacher_rows"),
            ("dynamics", "dynamics_rows", "teacher_dynamics_rows"),
        ):
            student, teacher = _scores(run.get(student_key, []), record), _scores(run.get(teacher_key, []), record)
            if grid == "noise":
                row.append(
                    ", ".join(f"{point['level']:g}: {score:.2f}" for point, score in zip(run["rows"], student, strict=True))
                )
            if not student:
                row += ["–", "–", "–"]
                continue
            teacher_mean = float(np.mean(teacher)) if teacher else None
            groups.setdefault((run["env"], training, grid, run["budget"]), []).append(
                (float(np.mean(student)), teacher_mean, run["seed"])
            )
            verdict = "–" if teacher_mean is None else ("yes" if np.mean(student) >= teacher_mean else "**no**")
            row += [f"{np.mean(student):.2f}", "–" if teacher_mean is None else f"{teacher_mean:.2f}", verdict]
        rows.append(row)
    header = ["env", "training", "seed", "env steps", "score per σ", "noise grid", "teacher", "≥ teacher"]
    lines = ["", *_table([*header, "dynamics grid", "teacher", "≥ teacher"], rows)]
    return lines + _robust_summary(groups)


def _robust_order(run: dict[str, Any]) -> tuple[int, str, str, int, int]:
    """The robust students' rows in :data:`ROBUST`'s order of envs, then by training, recipe, budget and seed."""
    envs = list(dict.fromkeys(entry[0] for entry in ROBUST))
    index = envs.index(run["env"]) if run["env"] in envs else len(envs)
    return (index, run["noise"], run.get("recipe", ""), run["budget"], run["seed"])


def _robust_summary(groups: dict[tuple[str, str, str, int], list[tuple[float, float | None, int]]]) -> list[str]:
    """
    :param groups: (env, training perturbation, grid, env steps) → per seed (student's grid mean, teacher's grid mean,
        seed)
    :return: the mean over seeds of each group of more than one seed, against the teacher's grid mean
    """
    summary = []
    for (env_id, noise, grid, budget), runs in groups.items():
        teachers = [teacher for _, teacher, _ in runs if teacher is not None]
        if len(runs) < 2 or len(teachers) != len(runs):
            continue
        students = [student for student, _, _ in runs]
        teacher = float(np.mean(teachers))
        above = sum(1 for student, own, _ in runs if own is not None and student >= own)
        verdict = "met" if np.mean(students) >= teacher else "**missed**"
        summary.append(
            [
                env_id,
                noise,
                grid,
                f"{budget:,}",
                ", ".join(str(seed) for _, _, seed in runs),
                f"{np.mean(students):.2f} ± {np.std(students):.2f}",
                f"{teacher:.2f}",
                f"{verdict} ({above} of {len(runs)} seeds)",
            ]
        )
    if not summary:
        return []
    header = ["env", "training", "grid", "env steps", "seeds", "grid mean", "teacher", "student ≥ teacher (mean)"]
    return ["", "Mean over seeds (± std):", "", *_table(header, summary)]


def _first_halfcheetah_size(frames: int, teachers: dict[str, Any]) -> dict[str, Any] | None:
    """
    The size of a ``halfcheetah_noise`` student recorded before its size was (issue 21's first runs): "~10%" sized by
    the MuJoCo suite from the stacked shape's first axis (``frames`` inputs, or the 17 of one frame), so wider than
    10% with stacked frames.
    """
    from .mujoco import hidden_width

    teacher_params = teachers.get("HalfCheetah-v5", {}).get("params")
    if not teacher_params:
        return None
    obs, actions = 17, 6  # HalfCheetah-v5's spaces
    width = hidden_width(obs if frames == 1 else frames, actions, 0.1 * teacher_params)
    params = (obs * frames + 1) * width + (width + 1) * width + (width + 1) * actions
    return dict(params=params, params_ratio=params / teacher_params)


#: Targets of issue 21 for the privileged students: the final return as a share of the full-state teacher's (CartPole),
#: teacher-normalized with the random policy's return (LunarLander, whose returns can be negative)
PRIVILEGED_TARGETS = {"CartPole-v1": ("final / teacher", 0.95), "LunarLander-v3": ("normalized", 0.9)}


def _privileged_report(runs: list[dict[str, Any]], teachers: dict[str, Any]) -> list[str]:
    """The privileged students' table (one row per run) and, per env and weight average, the mean over seeds."""
    lines = [
        "DistillDQN `[64, 64]` (defaults; `ema_tau` as the table says) on the last frames of the observation without its "
        "velocities; the bundled teacher on the full state through `StudentObservation`. Return on the same partial view "
        "(deterministic). Normalized = (G − G_random) / (G_teacher − G_random).",
        "",
    ]

    def average(run: dict[str, Any]) -> str:
        if not run.get("ema_tau"):
            return "none"
        # Runs of the first design, where the average also chose the env steps during learn()
        return f"ema_tau={run['ema_tau']:g}" + ("" if run.get("ema_acting") == "trained" else " (the average acting)")

    def shares(run: dict[str, Any]) -> tuple[float, float] | None:
        record = teachers.get(run["env"])
        if not record:
            return None
        teacher, random_return = record["teacher_return"], record["random_return"]
        return run["final"] / teacher, (run["final"] - random_return) / (teacher - random_return)

    rows = []
    ordered = sorted(runs, key=lambda r: (r["env"], average(r) != "none", average(r), r["budget"], r["seed"]))
    for run in ordered:
        record = teachers.get(run["env"], {})
        cells = ", ".join(f"{p['step']:,}: {p['mean']:.1f}" for p in run["curve"] if p["step"] >= run["budget"] / 4)
        share = shares(run)
        rows.append(
            [
                run["env"],
                average(run),
                str(run["frames"]),
                str(run["seed"]),
                cells,
                f"{record['teacher_return']:.1f}" if record else "–",
                f"{share[0]:.2f}" if share else "–",
                f"{share[1]:.2f}" if share else "–",
            ]
        )
    header = ["env", "weight average", "frames", "seed", "return at env steps", "teacher (full state)", "final / teacher"]
    lines += _table([*header, "normalized"], rows)
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {}
    for run in ordered:
        groups.setdefault((run["env"], average(run), run["frames"], run["budget"]), []).append(run)
    summary = []
    for (env_id, weights, frames, budget), group in groups.items():
        measured = [shares(run) for run in group]
        if any(share is None for share in measured):
            continue
        ratio = [share[0] for share in measured if share]
        normalized = [share[1] for share in measured if share]
        what, target = PRIVILEGED_TARGETS.get(env_id, ("normalized", 0.9))
        value = float(np.mean(ratio if what == "final / teacher" else normalized))
        verdict = "met" if value >= target else "**missed**"
        reached = sum(1 for share in measured if share and share[0 if what == "final / teacher" else 1] >= target)
        summary.append(
            [
                env_id,
                weights,
                str(frames),
                f"{budget:,}",
                _seeds(group),
                f"{np.mean(ratio):.2f} ± {np.std(ratio):.2f}",
                f"{np.mean(normalized):.2f} ± {np.std(normalized):.2f}",
                f"{what} ≥ {target:g}: {verdict} ({reached} of {len(group)} seeds)",
            ]
        )
    if summary:
        header = ["env", "weight average", "frames", "env steps", "seeds", "final / teacher", "normalized", "target (mean)"]
        lines += ["", "Mean over seeds (± std):", "", *_table(header, summary)]
    return lines


def _multi_teacher_report(runs: list[dict[str, Any]]) -> list[str]:
    """The multi-teacher tables: per seed, and the grid means over seeds against the best single teacher."""
    lines: list[str] = []
    new = [run for run in runs if "frames" in run]
    if new:
        factors = new[0]["variants"]
        lines += [
            "Teachers trained on their push force by `scripts/train_teachers.py --dynamics force_mag=F` (rl-zoo3, the "
            "zoo's DQN hyperparameters; × 1: the bundled teacher, same script). Students: PolicyDistill `[64, 64]` "
            f"(defaults, {new[0]['budget']:,} env steps, the last {new[0]['frames']} frames) on a push force drawn per "
            "episode among the teachers' (× " + ", × ".join(f"{f:g}" for f in factors) + "; `RandomDynamics`), labelled "
            "by the expert of the episode's force (`ExpertTeacher`: the env tells the teacher, the student must infer "
            "the force from its frames) or by all teachers averaged (equal weights, the env not telling). Grid mean "
            "of the normalized score ((G − 21.5) / (500 − 21.5)) over the force grid × "
            + ", × ".join(f"{f:g}" for f in FORCE_GRID)
            + " (deterministic, per point the same episodes and seeds for every agent).",
        ]
    legacy = [run for run in runs if "frames" not in run]
    means: dict[str, list[float]] = {}
    for run in sorted(new, key=lambda run: run["seed"]):
        lines += ["", f"Seed {run['seed']}:", "", *_multi_teacher_table(run, means)]
    if new:
        singles = {name: values for name, values in means.items() if name.startswith("teacher")}
        best = max(singles, key=lambda name: float(np.mean(singles[name])))
        rows = [
            [
                name,
                str(len(values)),
                f"{np.mean(values):.2f} ± {np.std(values):.2f}",
                f"{np.mean(values) - np.mean(singles[best]):+.2f}",
            ]
            for name, values in means.items()
        ]
        lines += ["", f"Over seeds {_seeds(new)} (mean ± std of the seeds' grid means; the best single teacher: {best}):", ""]
        lines += _table(["agent", "seeds", "grid mean", "− best single teacher"], rows)
    for run in legacy:
        lines += [
            "",
            f"Earlier design (seed {run['seed']}): teachers fine-tuned from the bundled one by DQN for "
            f"{run['teacher_budget']:,} steps, students without frames, {run['budget']:,} steps, averaged teachers:",
            "",
            *_multi_teacher_table(run, {}),
        ]
    return lines


def _multi_teacher_table(run: dict[str, Any], means: dict[str, list[float]]) -> list[str]:
    """One run's grid table and its verdicts (its grid means are added to ``means``)."""
    header = ["agent", *(f"× {f:g}" for f in FORCE_GRID), "grid mean"]
    rows, run_means = [], {}
    for name, grid in run["grids"].items():
        scores = [(row["mean"] - 21.5) / (500 - 21.5) for row in grid]
        run_means[name] = float(np.mean(scores))
        means.setdefault(name, []).append(run_means[name])
        rows.append([name, *(f"{row['mean']:.0f}" for row in grid), f"{run_means[name]:.2f}"])
    best_single = max(value for name, value in run_means.items() if name.startswith("teacher"))
    lines = [*_table(header, rows), ""]
    for name, value in run_means.items():
        if name.startswith("student of all") or name.startswith("student of the experts"):
            verdict = "met" if value - best_single >= 0.1 else "**missed**"
            lines.append(f"- {name} − best single teacher: {value - best_single:+.2f} (target ≥ +0.10: {verdict}).")
    return lines


def _sim_to_real_verdicts(by_method: dict[str, list[dict[str, Any]]]) -> list[str]:
    verdicts = []
    scratch = {
        "distill_dqn": "dqn",
        "distill_ppo": "ppo",
        "sim_student": "dqn",
        "sim_student_dqn": "dqn",
        "sim_student_ppo": "ppo",
    }
    finetune = _median_steps(by_method["finetune"]) if by_method.get("finetune") else None
    for student, baseline in scratch.items():
        if not by_method.get(student) or not by_method.get(baseline):
            continue
        mine, theirs = _median_steps(by_method[student]), _median_steps(by_method[baseline])
        parts = []
        for name, reference, share in (
            (f"{baseline.upper()} from scratch", theirs, 0.2),
            ("the fine-tuned teacher", finetune, 0.5),
        ):
            if mine is None:
                parts.append(f"vs {name}: the student never reached it (**missed**)")
            elif reference is None:
                parts.append(f"vs {name}: it never did, the student at {mine:,.0f} (met)")
            else:
                verdict = "met" if mine <= share * reference else "**missed**"
                parts.append(f"vs {name}: {mine / reference:.0%} of its {reference:,.0f} ({verdict}, ≤ {share:.0%})")
        verdicts.append(f"- {SIM_TO_REAL_METHODS[student][0]}: " + "; ".join(parts) + ".")
    return verdicts


def _halfcheetah_robust_report(runs: list[dict[str, Any]], teachers: dict[str, Any]) -> list[str]:
    """
    The ``halfcheetah_robust`` tables: per run and per grid, the student's and the teacher's mean normalized score
    (the teacher record's random and nominal returns, as the grids part's); the mean over seeds against the teacher;
    every grid point, mean of seeds.
    """
    record = teachers.get("HalfCheetah-v5")
    if not record:
        return ["No HalfCheetah-v5 teacher record: the scores need its random and nominal returns."]
    low, high = record["random_return"], record["teacher_return"]

    def score(value: float) -> float:
        return (value - low) / (high - low)

    def grid_means(rows: list[dict[str, Any]]) -> dict[str, float]:
        grids = dict.fromkeys(row["grid"] for row in rows)
        return {grid: float(np.mean([score(row["mean"]) for row in rows if row["grid"] == grid])) for grid in grids}

    first = runs[0]
    lines = [
        "The MuJoCo suite's PolicyDistill student (its settings and own `VecNormalize`, the last frames stacked, its size "
        "a share of the teacher's acting parameters) trained on perturbed experience, the SAC teacher labelling the clean "
        "state (`StudentObservation`): per episode a Gaussian observation noise σ drawn from {"
        + ", ".join(f"{level:g}" for level in first["noise"])
        + "} relative to the noise grid's scale (`noise`), and also the point of the dynamics grid drawn per episode "
        "(`RandomDynamics(tell_teacher=False)`, the nominal dynamics as often as the grid has them: `noise_dynamics`). "
        "Student and teacher on the same grid points, episodes and env seeds (the student's perturbation under its frame "
        "stack and frozen `VecNormalize`); score (G − G_random) / (G_teacher − G_random) with the teacher record's "
        f"G_random = {low:.1f} and G_teacher = {high:.1f}; a grid's score is the mean over its points.",
        "",
    ]
    order = sorted(runs, key=lambda run: (run["variant"], run["budget"], run["frames"], run["seed"]))
    rows, groups = [], {}
    for run in order:
        student, teacher = grid_means(run["rows"]), grid_means(run["teacher_rows"])
        size = run.get("student") or {}
        key = (run["variant"], run["budget"], run["frames"], size.get("params"))
        for grid in student:
            groups.setdefault((*key, grid), []).append((student[grid], teacher[grid], run["seed"]))
            rows.append(
                [
                    run["variant"],
                    str(run["seed"]),
                    f"{run['budget']:,}",
                    str(run["frames"]),
                    f"{size['params']:,} ({size['params_ratio']:.0%})" if size else "–",
                    grid,
                    f"{student[grid]:.2f}",
                    f"{teacher[grid]:.2f}",
                    "yes" if student[grid] >= teacher[grid] else "**no**",
                ]
            )
    header = ["training", "seed", "env steps", "frames", "student's acting params (of teacher's)", "grid", "student"]
    lines += _table([*header, "teacher", "student ≥ teacher"], rows)
    summary = []
    for (variant, budget, frames, _, grid), values in groups.items():
        students, teacher_means = [v[0] for v in values], [v[1] for v in values]
        above = sum(1 for student, teacher, _ in values if student >= teacher)
        verdict = "met" if np.mean(students) >= np.mean(teacher_means) else "**missed**"
        summary.append(
            [
                variant,
                f"{budget:,}",
                str(frames),
                ", ".join(str(seed) for _, _, seed in values),
                grid,
                f"{np.mean(students):.2f} ± {np.std(students):.2f}",
                f"{np.mean(teacher_means):.2f}",
                f"{verdict} ({above} of {len(values)} seeds)",
            ]
        )
    header = ["training", "env steps", "frames", "seeds", "grid", "student (mean ± std)", "teacher", "student ≥ teacher"]
    lines += ["", "Mean over seeds (± std of the seeds' grid means):", "", *_table(header, summary)]
    points: dict[tuple[str, int, int], dict[tuple[str, float], list[float]]] = {}
    teacher_points: dict[tuple[str, float], list[float]] = {}
    for run in order:
        per_point = points.setdefault((run["variant"], run["budget"], run["frames"]), {})
        for row in run["rows"]:
            per_point.setdefault((row["probe"], row["level"]), []).append(row["mean"])
        for row in run["teacher_rows"]:
            teacher_points.setdefault((row["probe"], row["level"]), []).append(row["mean"])
    labels = [f"{variant} ({budget:,}, {frames} frames)" for variant, budget, frames in points]
    cells = []
    for probe, level in teacher_points:
        teacher = float(np.mean(teacher_points[probe, level]))
        cells.append(
            [probe, f"{level:g}", f"{teacher:.0f} ({score(teacher):.2f})"]
            + [
                f"{np.mean(means[probe, level]):.0f} ({score(float(np.mean(means[probe, level]))):.2f})"
                if (probe, level) in means
                else "–"
                for means in points.values()
            ]
        )
    lines += ["", "Every point: return, mean of seeds (score):", ""]
    lines += _table(["perturbation", "level", "teacher", *labels], cells)
    return lines
