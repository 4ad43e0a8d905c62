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
* ``multi_teacher``: teachers of several dynamics (the bundled teacher fine-tuned on each variant) distilled into one
  student that trains on dynamics drawn per episode, against each single teacher over the dynamics grid.
* ``halfcheetah_noise``: a HalfCheetah student under observation noise σ = 0.1, the SAC teacher on the clean state.
"""

from __future__ import annotations

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
}
#: env steps of the sim-to-real runs: DQN-like / PPO-like, per env
SIM_TO_REAL_BUDGETS = {"CartPole-v1": (20_000, 60_000), "LunarLander-v3": (100_000, 300_000)}
#: relative observation noise of the robust students' training: a fixed σ, or one drawn per episode
ROBUST_NOISE = {"fixed_0.2": (0.2,), "per_episode": (0.0, 0.1, 0.2, 0.3)}
#: the noise grid the robust students are measured on (the robustness suite's)
NOISE_LEVELS = (0.0, 0.05, 0.1, 0.2, 0.3)
#: CartPole's push-force grid of the multi-teacher students, and the variants that get a teacher of their own
FORCE_GRID = (0.25, 0.35, 0.5, 0.75, 1.0, 1.5)
FORCE_TEACHERS = (0.25, 0.5)


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


def sim_to_real_job(shift: str, method: str, seed: int, episodes: int, budget_scale: float = 1.0) -> dict[str, Any]:
    """
    One run of the sim-to-real comparison.

    :param shift: a key of :data:`SHIFTS`
    :param method: a key of :data:`SIM_TO_REAL_METHODS`
    :param seed: seed
    :param episodes: evaluation episodes
    :param budget_scale: multiplies the budget (smoke tests)
    :return: the run's curve, the steps to the threshold and what the student's ``"auto"`` chose
    """
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
        if method == "distill_dqn":
            model = DistillDQN(
                "MlpPolicy", shifted_env(shift, seed=seed), teacher=teacher, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed
            )
        else:
            assert algo is not None
            model = _zoo_model(
                algo,
                env_id,
                lambda n_envs: shifted_env(shift, n_envs=n_envs, seed=seed),
                seed,
                None if method == "finetune" else NET_ARCH,
                teacher if method == "distill_ppo" else None,
            )
            if method == "finetune":  # the teacher's weights (its optimizer and replay data are not saved with it)
                model.policy.load_state_dict(teacher.policy.state_dict())
        curve = _curve(model, ppo_budget if algo == "ppo" else dqn_budget, eval_env, episodes)
        measurement = getattr(model, "reference_measurement", None)
        if measurement is not None:
            extra = dict(reference_where=measurement.where, reference_env_steps=measurement.env_steps)
        extra["choice"] = getattr(model, "recipe_choice", None) or getattr(model, "distill_coef_choice", None)
    reached = next((point["step"] for point in curve if point["mean"] >= threshold), None)
    if reached is not None and method != "teacher":
        reached += extra.get("reference_env_steps", 0)
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


def privileged_job(env_id: str, frames: int, budget: int, seed: int, episodes: int) -> dict[str, Any]:
    """
    A DistillDQN student (defaults, ``[64, 64]``) that sees the last ``frames`` frames without the velocities; the
    bundled teacher sees the full state. Evaluated along training on the same partial view.

    :param env_id: gymnasium id (a key of ``VELOCITY_INDICES``)
    :param frames: frames the student stacks
    :param budget: env steps
    :param seed: seed
    :param episodes: evaluation episodes
    :return: its curve
    """
    from sb3_distill import DistillDQN, load_teacher

    from ..runners import setup_worker

    setup_worker()
    teacher = load_teacher(f"dqn/{env_id}", device="cpu")
    model = DistillDQN(
        "MlpPolicy", _blind_env(env_id, frames, seed), teacher=teacher, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed
    )
    curve = _curve(model, budget, _blind_env(env_id, frames, 1000 + seed), episodes)
    return dict(env=env_id, frames=frames, seed=seed, budget=budget, curve=curve, final=curve[-1]["mean"])


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


def robust_student_job(env_id: str, noise: str, budget: int, seed: int, episodes: int) -> dict[str, Any]:
    """
    A DistillDQN student (defaults, ``[64, 64]``) trained on noisy observations (:data:`ROBUST_NOISE`), the teacher
    labelling the clean state; then its noise grid (``evaluate_robustness``, the suite's scale).

    :param env_id: gymnasium id
    :param noise: a key of :data:`ROBUST_NOISE`
    :param budget: env steps
    :param seed: seed
    :param episodes: episodes per noise level
    :return: the student's rows and the teacher's (same grid, episodes and seeds)
    """
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import DistillDQN, load_teacher
    from sb3_distill.robustness import StudentObservation, evaluate_robustness, observation_scale

    from ..runners import setup_worker

    setup_worker()
    teacher = load_teacher(f"dqn/{env_id}", device="cpu")
    scale = observation_scale(lambda: gym.make(env_id))

    def noisy(env: Any) -> Any:
        return StudentObservation(env, noise_levels(ROBUST_NOISE[noise], scale, env.observation_space, seed))

    model = DistillDQN(
        "MlpPolicy",
        make_vec_env(env_id, seed=seed, wrapper_class=noisy),
        teacher=teacher,
        policy_kwargs=dict(net_arch=NET_ARCH),
        seed=seed,
    )
    model.learn(budget)
    grids = {}
    for name, agent in (("student", model), ("teacher", teacher)):
        grids[name] = evaluate_robustness(agent, env_id, "obs_noise", list(NOISE_LEVELS), episodes, 0)
        for row in grids[name]:
            row.pop("returns")
    return dict(env=env_id, noise=noise, seed=seed, budget=budget, rows=grids["student"], teacher_rows=grids["teacher"])


# ----------------------------------------------------------------------------------------------- several teachers
class RandomForce:
    """CartPole whose push force is the nominal one times a factor drawn from ``factors`` at every reset."""

    def __init__(self, factors: tuple[float, ...], seed: int) -> None:
        self.factors, self.rng = factors, np.random.default_rng(seed)

    def __call__(self, env: Any) -> Any:
        import gymnasium as gym

        nominal = env.unwrapped.force_mag
        factors, rng = self.factors, self.rng

        class Resample(gym.Wrapper):
            def reset(self, **kwargs: Any) -> Any:
                self.unwrapped.force_mag = nominal * float(rng.choice(factors))  # type: ignore[attr-defined]
                return self.env.reset(**kwargs)

        return Resample(env)


def _force_teacher(factor: float, budget: int) -> Any:
    """The bundled CartPole teacher fine-tuned by DQN (the zoo's hyperparameters) with the push force × ``factor``;
    the best of its evaluations (10 episodes every 1,000 env steps) is kept."""
    import copy

    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_distill import load_teacher

    teacher = load_teacher("dqn/CartPole-v1", device="cpu")
    shift = dict(env="CartPole-v1", dynamics={"force_mag": factor}, kwargs={}, label="")
    SHIFTS[f"force_{factor}"] = shift
    model = _zoo_model("dqn", "CartPole-v1", lambda n_envs: shifted_env(f"force_{factor}", n_envs=n_envs, seed=0), 0, None)
    model.policy.load_state_dict(teacher.policy.state_dict())
    eval_env = shifted_env(f"force_{factor}", seed=999)
    start, _ = evaluate_policy(model, eval_env, n_eval_episodes=10)
    best: dict[str, Any] = dict(mean=float(start), state=copy.deepcopy(model.policy.state_dict()), step=0)

    class KeepBest(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 1000 == 0:
                mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=10)
                if mean > best["mean"]:
                    best.update(mean=float(mean), state=copy.deepcopy(self.model.policy.state_dict()), step=self.num_timesteps)
            return True

    model.learn(budget, callback=KeepBest())
    model.policy.load_state_dict(best["state"])
    return load_teacher(model, device="cpu"), best


def multi_teacher_job(budget: int, teacher_budget: int, seed: int, episodes: int) -> dict[str, Any]:
    """
    Teachers of CartPole's push force × 1 (the bundled one) and × each of :data:`FORCE_TEACHERS` (fine-tuned there),
    and PolicyDistill students (``[64, 64]``, defaults) trained on a push force drawn per episode from
    :data:`FORCE_GRID`: from all teachers (equal weights) and from the nominal teacher alone. Every agent's returns
    over the force grid.

    :param budget: the students' env steps
    :param teacher_budget: env steps of each variant teacher's fine-tuning
    :param seed: seed of the students
    :param episodes: evaluation episodes per grid point
    :return: the grid of every agent, and the variant teachers' training records
    """
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill import PolicyDistill, load_teacher
    from sb3_distill.robustness import evaluate_robustness

    from ..runners import setup_worker

    setup_worker()
    agents: dict[str, Any] = {"teacher × 1": load_teacher("dqn/CartPole-v1", device="cpu")}
    trained = {}
    for factor in FORCE_TEACHERS:
        agents[f"teacher × {factor:g}"], record = _force_teacher(factor, teacher_budget)
        trained[f"teacher × {factor:g}"] = dict(best_return=record["mean"], best_step=record["step"])
    teachers = list(agents.values())
    for name, teacher_list in (("student of all teachers", teachers), ("student of teacher × 1", teachers[:1])):
        env = make_vec_env("CartPole-v1", seed=seed, wrapper_class=RandomForce(FORCE_GRID, seed))
        agents[name] = PolicyDistill("MlpPolicy", env, teacher=teacher_list, policy_kwargs=dict(net_arch=NET_ARCH), seed=seed)
        agents[name].learn(budget)
    grids = {}
    for name, agent in agents.items():
        rows = evaluate_robustness(agent, "CartPole-v1", "dynamics:force_mag", list(FORCE_GRID), episodes, 0)
        grids[name] = [dict(level=row["level"], mean=row["mean"], std=row["std"]) for row in rows]
    return dict(seed=seed, budget=budget, teacher_budget=teacher_budget, grids=grids, teachers=trained)


# ----------------------------------------------------------------------------------------------- HalfCheetah
def halfcheetah_noise_job(zoo_dir: str, budget: int, seed: int, episodes: int, sigma: float = 0.1) -> dict[str, Any]:
    """
    The MuJoCo suite's ~10% PolicyDistill student, trained on HalfCheetah with absolute Gaussian observation noise σ
    (the teacher labels the clean state), against the SAC teacher's clean return.

    :param zoo_dir: the folder holding ``sac/HalfCheetah-v3_1``
    :param budget: env steps
    :param seed: seed
    :param episodes: evaluation episodes
    :param sigma: absolute noise σ
    :return: the teacher's clean and noisy returns, the student's noisy return
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    from sb3_distill.robustness import GaussianNoise, StudentObservation

    from ..runners import setup_worker
    from ..suite import get_suite

    setup_worker()
    mujoco = get_suite("mujoco")
    teacher = mujoco.load_teacher("HalfCheetah-v5", zoo_dir)

    def noisy(env: Any) -> Any:
        return StudentObservation(env, GaussianNoise(sigma, 1.0, env.observation_space, seed=seed))

    def env(env_seed: int, wrapper: Any = None) -> Any:
        return make_vec_env("HalfCheetah-v5", seed=env_seed, wrapper_class=wrapper)

    # The MuJoCo suite's student keeps its own VecNormalize statistics (observations only), above the noise; the
    # teacher gets the clean raw state through StudentObservation's channel and normalizes it itself
    train_env = VecNormalize(env(seed, noisy), norm_reward=False)
    model = mujoco.build_model("policy_distill:10%", "HalfCheetah-v5", train_env, teacher, seed, {})
    model.learn(budget)
    results = {}
    for name, agent, wrapper in (
        ("teacher clean", teacher, None),
        ("teacher noisy", teacher, noisy),
        ("student noisy", model, noisy),
    ):
        eval_env = env(1000 + seed, wrapper)
        if agent is model:
            eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
            sync_envs_normalization(train_env, eval_env)
        returns, _ = evaluate_policy(agent, eval_env, n_eval_episodes=episodes, return_episode_rewards=True)
        results[name] = dict(mean=float(np.mean(returns)), std=float(np.std(returns)))
    return dict(seed=seed, budget=budget, sigma=sigma, returns=results)


# ----------------------------------------------------------------------------------------------- plan and report
#: part → its jobs' settings: (what, seeds (None: --seeds), env steps)
PRIVILEGED = (("CartPole-v1", 2, 5_000), ("LunarLander-v3", 2, 100_000))
ROBUST = (("CartPole-v1", "fixed_0.2", 15_000), ("CartPole-v1", "per_episode", 15_000), ("Acrobot-v1", "per_episode", 15_000))
MULTI_TEACHER = dict(budget=10_000, teacher_budget=5_000)
HALFCHEETAH = dict(budget=20_000)
PARTS = ("grids", "sim_to_real", "privileged", "robust", "multi_teacher", "halfcheetah_noise")


def jobs(
    parts: list[str], envs: list[str], shifts: list[str], seeds: list[int], episodes: int, zoo_dir: str, scale: float
) -> list[Any]:
    """
    :param parts: the parts to run (:data:`PARTS` but ``"grids"``)
    :param envs: the envs of the privileged and robust students (the others are not run)
    :param shifts: the sim-to-real shifts (keys of :data:`SHIFTS`)
    :param seeds: seeds of every run
    :param episodes: evaluation episodes
    :param zoo_dir: the teachers' folder (HalfCheetah's)
    :param scale: multiplies every budget (smoke tests)
    :return: the jobs, one process each
    """
    from ..suite import Job

    def steps(budget: int) -> int:
        return max(int(budget * scale), 500)

    found: list[Job] = []
    for seed in seeds:
        if "sim_to_real" in parts:
            for shift in shifts:
                for method in SIM_TO_REAL_METHODS:
                    args, name = (shift, method, seed, episodes, scale), f"sim-to-real {shift} {method} seed {seed}"
                    found.append(Job(sim_to_real_job, args, name, "sim_to_real", 10_000, seed))
        if "privileged" in parts:
            for env_id, frames, budget in (entry for entry in PRIVILEGED if entry[0] in envs):
                args = (env_id, frames, steps(budget), seed, episodes)
                found.append(Job(privileged_job, args, f"privileged {env_id} seed {seed}", "privileged", budget, seed))
        if "robust" in parts:
            for env_id, noise, budget in (entry for entry in ROBUST if entry[0] in envs):
                args = (env_id, noise, steps(budget), seed, episodes)
                name = f"robust {env_id} {noise} seed {seed}"
                found.append(Job(robust_student_job, args, name, "robust_students", budget, seed))
        if "multi_teacher" in parts:
            args = (steps(MULTI_TEACHER["budget"]), steps(MULTI_TEACHER["teacher_budget"]), seed, episodes)
            found.append(Job(multi_teacher_job, args, f"multi-teacher seed {seed}", "multi_teacher", 20_000, seed))
        if "halfcheetah_noise" in parts:
            args = (zoo_dir, steps(HALFCHEETAH["budget"]), seed, min(episodes, 5))
            name = f"HalfCheetah noise seed {seed}"
            found.append(Job(halfcheetah_noise_job, args, name, "halfcheetah_noise", 40_000, seed))
    return found


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    from ..report import table

    return table(header, rows)


def _seeds(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(run["seed"]) for run in sorted(runs, key=lambda run: run["seed"]))


def _steps(value: int | None, budget: int | None = None) -> str:
    return f"{value:,}" if value is not None else (f"never (≤ {budget:,})" if budget else "never")


def _median_steps(runs: list[dict[str, Any]]) -> float | None:
    """The median of the seeds' steps to the threshold, a seed that never reached it counting as infinite."""
    values = sorted(np.inf if run["steps_to_threshold"] is None else run["steps_to_threshold"] for run in runs)
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
            "the teacher there. Median over seeds (a seed that never reached it counts as infinite). Target (issue 21): "
            "the student in ≤ 20% of the from-scratch steps and ≤ 50% of the fine-tuned teacher's.",
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
                per_seed = ", ".join(_steps(run["steps_to_threshold"]) for run in sorted(method_runs, key=lambda r: r["seed"]))
                median = _median_steps(method_runs)
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
                        chose,
                    ]
                )
            lines += _table(
                ["method", "seeds", "budget", "steps to threshold, per seed", "median", "final return", "auto chose"], rows
            )
            lines += ["", *_sim_to_real_verdicts(by_method)]
    if results.get("privileged"):
        lines += ["", "### Privileged teachers: students without velocities", ""]
        lines += [
            "DistillDQN `[64, 64]` (defaults) on the last frames of the observation without its velocities; the bundled "
            "teacher on the full state through `StudentObservation`. Return on the same partial view (deterministic)."
        ]
        rows = []
        teachers = results.get("teachers", {})
        for run in sorted(results["privileged"], key=lambda r: (r["env"], r["seed"])):
            teacher = teachers.get(run["env"], {}).get("teacher_return")
            cells = ", ".join(f"{p['step']:,}: {p['mean']:.1f}" for p in run["curve"] if p["step"] >= run["budget"] / 4)
            share = f"{run['final'] / teacher:.2f}" if teacher else "–"
            rows.append([run["env"], str(run["frames"]), str(run["seed"]), cells, f"{teacher:.1f}" if teacher else "–", share])
        lines += [
            "",
            *_table(["env", "frames", "seed", "return at env steps", "teacher (full state)", "final / teacher"], rows),
        ]
    if results.get("robust_students"):
        lines += ["", "### Robust students: trained on noisy observations, the teacher on the clean state", ""]
        lines += [
            "Mean normalized score over the noise grid σ ∈ {0, 0.05, 0.1, 0.2, 0.3} (relative to each observation's "
            "scale), normalized by the teacher's nominal return (the suite's teacher record); the teacher measured on the "
            "same grid, episodes and seeds in the same job."
        ]
        rows = []
        for run in results["robust_students"]:
            record = results.get("teachers", {}).get(run["env"])
            if record is None:
                continue
            random_return, teacher_return = record["random_return"], record["teacher_return"]
            scores = [(row["mean"] - random_return) / (teacher_return - random_return) for row in run["rows"]]
            teacher_noise = [(row["mean"] - random_return) / (teacher_return - random_return) for row in run["teacher_rows"]]
            teacher_cell = f"{np.mean(teacher_noise):.2f}" if teacher_noise else "–"
            per_level = ", ".join(f"{row['level']:g}: {score:.2f}" for row, score in zip(run["rows"], scores, strict=True))
            verdict = "–" if not teacher_noise else ("yes" if np.mean(scores) >= np.mean(teacher_noise) else "**no**")
            rows.append(
                [
                    run["env"],
                    run["noise"],
                    str(run["seed"]),
                    f"{run['budget']:,}",
                    per_level,
                    f"{np.mean(scores):.2f}",
                    teacher_cell,
                    verdict,
                ]
            )
        lines += [
            "",
            *_table(["env", "training noise", "seed", "env steps", "score per σ", "grid mean", "teacher", "≥ teacher"], rows),
        ]
    if results.get("multi_teacher"):
        lines += ["", "### Several dynamics-teachers into one student (CartPole, push force grid)", ""]
        lines += [
            "Teachers: the bundled one (force × 1) and the bundled one fine-tuned by DQN (the zoo's hyperparameters, the "
            "best of 10-episode evaluations every 1,000 steps kept) at force × "
            + " and × ".join(f"{f:g}" for f in FORCE_TEACHERS)
            + ". Students: PolicyDistill `[64, 64]` (defaults) on a push force drawn per episode from the grid, from all "
            "teachers (equal weights) or from the nominal one. Return per force factor (deterministic); grid mean of "
            "the normalized score ((G − 21.5) / (500 − 21.5), CartPole's random and teacher returns)."
        ]
        for run in results["multi_teacher"]:
            header = ["agent", *(f"× {f:g}" for f in FORCE_GRID), "grid mean"]
            rows = []
            means = {}
            for name, grid in run["grids"].items():
                scores = [(row["mean"] - 21.5) / (500 - 21.5) for row in grid]
                means[name] = float(np.mean(scores))
                rows.append([name, *(f"{row['mean']:.0f}" for row in grid), f"{means[name]:.2f}"])
            best_single = max(value for name, value in means.items() if name.startswith("teacher"))
            student = means.get("student of all teachers", np.nan)
            lines += [
                "",
                f"Seed {run['seed']}, students {run['budget']:,} env steps, teachers fine-tuned {run['teacher_budget']:,}:",
                "",
            ]
            lines += [
                *_table(header, rows),
                "",
                f"Student of all teachers − best single teacher: {student - best_single:+.2f} (target ≥ +0.10: "
                f"{'met' if student - best_single >= 0.1 else '**missed**'}).",
            ]
    if results.get("halfcheetah_noise"):
        lines += ["", "### HalfCheetah under observation noise σ = 0.1 (absolute), the teacher on the clean state", ""]
        rows = []
        for run in results["halfcheetah_noise"]:
            returns = run["returns"]
            clean = returns["teacher clean"]["mean"]
            rows.append(
                [
                    str(run["seed"]),
                    f"{run['budget']:,}",
                    f"{clean:.0f}",
                    f"{returns['teacher noisy']['mean']:.0f}",
                    f"{returns['student noisy']['mean']:.0f} ± {returns['student noisy']['std']:.0f}",
                    f"{returns['student noisy']['mean'] / clean:.2f}",
                    "met" if returns["student noisy"]["mean"] >= 0.9 * clean else "**missed**",
                ]
            )
        header = ["seed", "env steps", "teacher clean", "teacher noisy", "student noisy", "student / teacher clean", "≥ 0.9"]
        lines += _table(header, rows)
    return lines


def _sim_to_real_verdicts(by_method: dict[str, list[dict[str, Any]]]) -> list[str]:
    verdicts = []
    scratch = {"distill_dqn": "dqn", "distill_ppo": "ppo"}
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
