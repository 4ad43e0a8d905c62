"""
:func:`evaluate_robustness`: an agent's return under a perturbation, level by level.

Perturbations (a name, or ``"dynamics:PARAMETER"``), what their level means, and its range:

======================  ============================================================================  =============
name                    level                                                                         range
======================  ============================================================================  =============
``obs_noise``           σ of Gaussian observation noise, relative to each dimension's scale           ≥ 0
``obs_delay``           the agent sees the observation of ``level`` steps ago                         whole, 0–1000
``action_noise``        Box: σ relative to half the action range; discrete: P(random action)          ≥ 0 / [0, 1]
``sticky_actions``      probability that the env repeats the previous action                          [0, 1]
``fgsm`` / ``pgd``      L∞ radius of an adversarial perturbation, relative to each dimension's scale  ≥ 0
``dynamics:PARAMETER``  factor on a physical constant (``dynamics:length``, ``dynamics:mass:torso``)  > 0
``gravity``             Box2D (LunarLander) gravity, a ``gymnasium.make`` keyword                     (−12, 0)
``wind_power``          Box2D wind power (wind enabled from level > 0)                                [0, 20]
``turbulence_power``    Box2D turbulence power (wind enabled, wind power 0, from level > 0)           [0, 2]
======================  ============================================================================  =============

The scale of observations is :func:`~sb3_distill.robustness.observation_scale`'s (``scale=`` chooses how it is
measured). Each level is measured on a fresh env, seeded with ``seed`` (so every level starts from the same states),
over ``n_eval_episodes`` deterministic episodes (SB3's ``evaluate_policy``).
"""

import difflib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill.robustness.adversarial import ATTACKS, AdversarialObservation, differentiable_agent
from sb3_distill.robustness.observations import Delay, GaussianNoise, StudentObservation, observation_scale
from sb3_distill.robustness.wrappers import ActionNoise, StickyActions, check_dynamics, shift_dynamics
from sb3_distill.teachers.teacher import Teacher

EXPORTED_SUFFIXES = (".onnx", ".pt")
DYNAMICS_PREFIX = "dynamics:"


class RobustnessError(ValueError):
    """Bad input to a robustness evaluation; the message says what to fix."""


@dataclass(frozen=True)
class Perturbation:
    """
    A named perturbation: its range of levels and how a level changes the env.

    :param name: e.g. ``"obs_noise"``
    :param description: what a level means
    :param low: the smallest level
    :param high: the largest level
    :param low_open: whether ``low`` itself is excluded
    :param high_open: whether ``high`` itself is excluded
    :param integer: whether levels are whole numbers
    :param make_kwargs: for Box2D constants: level → ``gymnasium.make`` keyword arguments
    :param wrap: for a perturbation of your own: ``(env, level, seed) -> perturbed env`` (the env is Monitor-wrapped)
    """

    name: str
    description: str
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    make_kwargs: Callable[[float], dict[str, Any]] | None = field(default=None, compare=False)
    wrap: Callable[[gym.Env, float, int], gym.Env] | None = field(default=None, compare=False)

    @property
    def needs_scale(self) -> bool:
        return self.name in ("obs_noise", *ATTACKS)

    @property
    def is_attack(self) -> bool:
        return self.name in ATTACKS

    @property
    def parameter(self) -> str | None:
        return self.name[len(DYNAMICS_PREFIX) :] if self.name.startswith(DYNAMICS_PREFIX) else None

    def range_text(self) -> str:
        left, right = ("(" if self.low_open else "["), (")" if self.high_open or math.isinf(self.high) else "]")
        kind = "a whole number in " if self.integer else ""
        return f"{kind}{left}{self.low:g}, {self.high:g}{right}"

    def check_level(self, level: Any) -> float:
        """
        :param level: a level
        :return: it, as a float
        :raises RobustnessError: when it is not a number in this perturbation's range
        """
        try:
            value = float(level)
        except (TypeError, ValueError):
            raise RobustnessError(f"{self.name}: level {level!r} is not a number.") from None
        outside = (
            not math.isfinite(value)
            or value < self.low
            or value > self.high
            or (self.low_open and value == self.low)
            or (self.high_open and value == self.high)
            or (self.integer and value != int(value))
        )
        if outside:
            raise RobustnessError(f"{self.name}: level {level!r} is out of range: {self.description}, {self.range_text()}.")
        return value


def _box2d_kwargs(name: str) -> Callable[[float], dict[str, Any]]:
    def kwargs(level: float) -> dict[str, Any]:
        if name == "gravity":
            return {"gravity": level}
        if level == 0:
            return {"enable_wind": False}  # the nominal env, exactly (wind draws its phase from the env's generator)
        if name == "wind_power":
            return {"enable_wind": True, "wind_power": level}
        return {"enable_wind": True, "wind_power": 0.0, "turbulence_power": level}

    return kwargs


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("obs_noise", "σ of Gaussian observation noise relative to each observation's scale"),
        Perturbation("obs_delay", "observation delay in env steps", 0, 1000, integer=True),
        Perturbation("action_noise", "σ relative to half the action range (Box), or P(random action) (discrete)"),
        Perturbation("sticky_actions", "probability of repeating the previous action", 0, 1),
        Perturbation("fgsm", "L∞ radius of an FGSM perturbation relative to each observation's scale"),
        Perturbation("pgd", "L∞ radius of a PGD perturbation relative to each observation's scale"),
        Perturbation(
            "gravity", "Box2D gravity (gymnasium.make keyword)", -12, 0, True, True, make_kwargs=_box2d_kwargs("gravity")
        ),
        Perturbation("wind_power", "Box2D wind power", 0, 20, make_kwargs=_box2d_kwargs("wind_power")),
        Perturbation("turbulence_power", "Box2D turbulence power", 0, 2, make_kwargs=_box2d_kwargs("turbulence_power")),
    )
}


def get_perturbation(name: str | Perturbation) -> Perturbation:
    """
    :param name: a perturbation's name (see the module's docstring), or a :class:`Perturbation`
    :return: the perturbation
    :raises RobustnessError: for an unknown name (with the closest known one)
    """
    if isinstance(name, Perturbation):
        return name
    if not isinstance(name, str):
        raise RobustnessError(f"perturbation must be a name such as 'obs_noise', not {type(name).__name__}.")
    if name.startswith(DYNAMICS_PREFIX) and len(name) > len(DYNAMICS_PREFIX):
        return Perturbation(name, f"factor on the env's {name[len(DYNAMICS_PREFIX) :]!r}", 0, low_open=True)
    known = [*PERTURBATIONS, "dynamics:PARAMETER"]
    if name not in PERTURBATIONS:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RobustnessError(f"Unknown perturbation {name!r}: use one of {', '.join(known)}.{hint}")
    return PERTURBATIONS[name]


class ExportedAgent:
    """
    An exported file (``sb3-distill export``: ONNX or TorchScript) behind SB3's ``predict()``.

    :param path: the ``.onnx`` or ``.pt`` file
    """

    def __init__(self, path: str | Path) -> None:
        from sb3_distill.export import load_exported

        self.path = Path(path)
        self.run = load_exported(self.path)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        actions, _ = self.run(np.asarray(observation, dtype=np.float32))
        return actions, None


class _Normalized:
    """An SB3 model trained under ``VecNormalize``: its statistics applied before ``predict()``."""

    def __init__(self, model: BaseAlgorithm) -> None:
        self.model = model
        self.normalizer = model.get_vec_normalize_env()

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> Any:
        if self.normalizer is not None:
            observation = self.normalizer.normalize_obs(observation)
        return self.model.predict(observation, state, episode_start, deterministic)


def load_agent(model: Any, device: str = "cpu") -> Any:
    """
    What :func:`evaluate_robustness` evaluates: a loaded model, a :class:`~sb3_distill.Teacher`, an exported file, or
    a path / spec ``load_teacher`` takes (a student's ``.zip``, a run folder, a zoo id such as ``"dqn/CartPole-v1"``).

    :param model: the model or where it is
    :param device: torch device for models loaded here
    :return: the model (:class:`ExportedAgent` for exported files)
    """
    if isinstance(model, (str, Path)):
        if Path(model).suffix in EXPORTED_SUFFIXES:
            if not Path(model).exists():
                raise RobustnessError(f"{model} does not exist: give the file written by 'sb3-distill export'.")
            return ExportedAgent(model)
        from sb3_distill import load_teacher

        return load_teacher(model, device=device)
    if isinstance(model, (BaseAlgorithm, BasePolicy, Teacher, ExportedAgent)) or hasattr(model, "predict"):
        return model
    raise RobustnessError(
        f"Cannot evaluate a {type(model).__name__}: give an SB3 model, a Teacher, an object with SB3's predict(), "
        "a saved .zip, a zoo id or an exported .onnx / .pt file."
    )


def _env_factory(env: Any, env_kwargs: dict[str, Any]) -> Callable[..., gym.Env]:
    """A function ``(**make_kwargs) -> env`` for an id, a factory, or (without make kwargs) an env instance."""
    if isinstance(env, VecEnv):
        raise RobustnessError(
            "evaluate_robustness needs one gymnasium env per level, not a VecEnv: give the env id, a function that "
            "makes the env, or a gymnasium env (a teacher's env: its env_id)."
        )
    if isinstance(env, str):
        if env not in gym.registry:
            close = difflib.get_close_matches(env, list(gym.registry), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RobustnessError(f"Unknown env id {env!r}.{hint}")
        return lambda **kwargs: gym.make(env, **{**env_kwargs, **kwargs})
    if isinstance(env, gym.Env):

        def same(**kwargs: Any) -> gym.Env:
            if kwargs:
                raise RobustnessError(
                    f"This perturbation changes gymnasium.make keyword arguments ({', '.join(kwargs)}), so it needs the "
                    "env id (or a function that takes them), not a built env."
                )
            return env

        return same
    if callable(env):
        return env
    raise RobustnessError(f"env must be an env id, a gymnasium env or a function that makes one, not {type(env).__name__}.")


def _takes_kwargs(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)


def check_robustness_inputs(
    model: Any, env: Any, perturbation: Any, levels: Sequence[Any]
) -> tuple[Perturbation, list[float]]:
    """
    Every check :func:`evaluate_robustness` makes before anything runs.

    :return: the perturbation and the levels as floats
    :raises RobustnessError: naming what to fix
    """
    chosen = get_perturbation(perturbation)
    if isinstance(levels, (str, bytes)) or not isinstance(levels, (Sequence, np.ndarray)):
        raise RobustnessError(f"levels must be a list of numbers, e.g. [0.0, 0.1, 0.3], not {levels!r}.")
    if len(levels) == 0:
        raise RobustnessError("levels is empty: give at least one level, e.g. [0.0, 0.1, 0.3].")
    values = [chosen.check_level(level) for level in levels]
    known = chosen.name in PERTURBATIONS or chosen.parameter is not None
    if not known and chosen.wrap is None and chosen.make_kwargs is None:
        raise RobustnessError(
            f"The perturbation {chosen.name!r} is not one of the package's: give it wrap=(env, level, seed) -> env "
            "or make_kwargs=level -> gymnasium.make keyword arguments."
        )
    if chosen.is_attack:
        from sb3_distill.robustness.adversarial import AttackError

        try:
            differentiable_agent(model)
        except AttackError as error:
            raise RobustnessError(str(error)) from error
    if chosen.make_kwargs is not None and not isinstance(env, str) and not (callable(env) and _takes_kwargs(env)):
        raise RobustnessError(
            f"{chosen.name} is a gymnasium.make keyword argument: give the env id (e.g. 'LunarLander-v3'), or a function "
            "that takes keyword arguments (lambda **kwargs: gym.make('LunarLander-v3', **kwargs))."
        )
    return chosen, values


def perturbed_env(
    make_env: Callable[..., gym.Env],
    perturbation: Perturbation,
    level: float,
    model: Any = None,
    scale: float | np.ndarray = 1.0,
    seed: int = 0,
    attack_steps: int = 10,
) -> gym.Env:
    """
    A fresh env under ``perturbation`` at ``level`` (Monitor-wrapped under the perturbation's wrappers).

    :param make_env: ``(**make_kwargs) -> env``
    :param perturbation: the perturbation
    :param level: its level (checked)
    :param model: the attacked agent (attacks only)
    :param scale: per-dimension observation scale (noise and attacks)
    :param seed: seed of the perturbation's random draws
    :param attack_steps: PGD's steps
    :return: the env
    """
    level = perturbation.check_level(level)
    kwargs = perturbation.make_kwargs(level) if perturbation.make_kwargs is not None else {}
    env = make_env(**kwargs)
    if perturbation.parameter is not None:
        shift_dynamics(env, perturbation.parameter, level)
    env = Monitor(env)
    name = perturbation.name
    if name == "obs_noise":
        return StudentObservation(env, GaussianNoise(level, scale, env.observation_space, seed))
    if name == "obs_delay":
        return StudentObservation(env, Delay(int(level)))
    if name == "action_noise":
        return ActionNoise(env, level, seed)
    if name == "sticky_actions":
        return StickyActions(env, level, seed)
    if perturbation.is_attack:
        transform = AdversarialObservation(model, level, scale, name, attack_steps, env.observation_space, seed)
        return StudentObservation(env, transform)
    if perturbation.wrap is not None:
        return perturbation.wrap(env, level, seed)
    return env


def evaluate_robustness(
    model: Any,
    env: Any,
    perturbation: str | Perturbation,
    levels: Sequence[float],
    n_eval_episodes: int = 10,
    seed: int = 0,
    scale: str | float | np.ndarray = "auto",
    env_kwargs: dict[str, Any] | None = None,
    attack_steps: int = 10,
    as_frame: bool = False,
) -> Any:
    """
    The agent's return under ``perturbation`` at each level (see the module's docstring for the perturbations).

    Everything is checked before the first episode: the perturbation's name, every level's range, that an attacked
    model has gradients (not ARS, not an exported file), that the env can take the perturbation (a Box2D constant
    needs the env id; a dynamics parameter must exist in the env).

    :param model: an SB3 / sb3-contrib model (a student), a :class:`~sb3_distill.Teacher`, an object with SB3's
        ``predict()``, or where one is: a ``.zip``, a run folder, a zoo id (``"dqn/CartPole-v1"``), an exported
        ``.onnx`` / ``.pt`` file. A model trained under ``VecNormalize`` has its statistics applied to the perturbed
        observations.
    :param env: an env id, a function that makes the env (with ``**kwargs`` for Box2D constants), or a gymnasium env
    :param perturbation: a name (``"obs_noise"``, ``"pgd"``, ``"dynamics:length"``...) or a :class:`Perturbation`
    :param levels: the levels to measure (the nominal level, e.g. 0 or 1.0, included if you want it)
    :param n_eval_episodes: deterministic episodes per level
    :param seed: seed of the env and of the perturbation's draws, the same at every level
    :param scale: how observation noise and attack radii are scaled (:func:`observation_scale`'s ``method``)
    :param env_kwargs: keyword arguments of ``gymnasium.make`` (env ids only), under the perturbation's own
    :param attack_steps: PGD's steps
    :param as_frame: return a pandas ``DataFrame`` instead of a list of dicts
    :return: one row per level: ``perturbation``, ``level``, ``mean``, ``std`` (of the episode returns), ``min``,
        ``max``, ``mean_length``, ``n_episodes``, ``returns``
    """
    agent = load_agent(model)
    chosen, values = check_robustness_inputs(agent, env, perturbation, levels)
    if int(n_eval_episodes) != n_eval_episodes or n_eval_episodes < 1:
        raise RobustnessError(f"n_eval_episodes must be a whole number >= 1, not {n_eval_episodes}.")
    if env_kwargs and not isinstance(env, str):
        raise RobustnessError("env_kwargs are gymnasium.make keyword arguments: give the env as an id with them.")
    make_env = _env_factory(env, dict(env_kwargs or {}))
    probe = make_env()
    if chosen.parameter is not None:
        try:
            check_dynamics(probe, chosen.parameter)
        except ValueError as error:
            raise RobustnessError(str(error)) from error
    observation_scale_ = _checked_scale(probe, scale, seed) if chosen.needs_scale else 1.0
    if not isinstance(env, gym.Env):
        probe.close()
    player = _Normalized(agent) if isinstance(agent, BaseAlgorithm) and agent.get_vec_normalize_env() is not None else agent
    rows = []
    for level in values:
        perturbed = perturbed_env(make_env, chosen, level, agent, observation_scale_, seed, attack_steps)
        perturbed.action_space.seed(seed)
        perturbed.reset(seed=seed)  # seeds the env; evaluate_policy resets it again, continuing the seeded generator
        returns, lengths = evaluate_policy(
            player, perturbed, n_eval_episodes=int(n_eval_episodes), deterministic=True, return_episode_rewards=True
        )
        if isinstance(env, gym.Env):
            _restore(env, chosen, level)
        else:
            perturbed.close()
        rows.append(
            dict(
                perturbation=chosen.name,
                level=level,
                mean=float(np.mean(returns)),
                std=float(np.std(returns)),
                min=float(np.min(returns)),
                max=float(np.max(returns)),
                mean_length=float(np.mean(lengths)),
                n_episodes=int(n_eval_episodes),
                returns=[float(value) for value in returns],  # type: ignore[union-attr]
            )
        )
    return rows_to_frame(rows) if as_frame else rows


def _checked_scale(env: gym.Env, scale: Any, seed: int) -> np.ndarray:
    """The observation scale, or a :class:`RobustnessError` before anything runs."""
    try:
        values = observation_scale(env, scale, seed=seed)
        shape = env.observation_space.shape or ()
        np.broadcast_to(values, shape)
    except (TypeError, ValueError) as error:
        raise RobustnessError(f"scale={scale!r} does not fit this env's observations: {error}") from error
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise RobustnessError(f"The observation scale must be finite and >= 0 everywhere, not {values}.")
    return values


def _restore(env: gym.Env, perturbation: Perturbation, level: float) -> None:
    """Undo a dynamics shift on a user's env, so that the next level starts from the nominal constants."""
    if perturbation.parameter is not None:
        shift_dynamics(env, perturbation.parameter, 1.0 / level)


def rows_to_frame(rows: list[dict[str, Any]]) -> Any:
    """
    :param rows: what :func:`evaluate_robustness` returns
    :return: the same as a pandas ``DataFrame``
    """
    try:
        import pandas as pd
    except ImportError as error:  # pandas is a dependency of the package; a broken install says how to repair it
        raise ImportError(f"as_frame=True needs pandas: pip install pandas ({error}).") from error
    return pd.DataFrame(rows)


def normalized_scores(rows: list[dict[str, Any]], reference: tuple[float, float]) -> list[float]:
    """
    :param rows: what :func:`evaluate_robustness` returns
    :param reference: ``(random_return, nominal_return)`` (e.g. ``Teacher.reference_returns()``)
    :return: each level's mean, normalized: (G − G_random) / (G_nominal − G_random)
    """
    low, high = reference
    return [(row["mean"] - low) / (high - low) for row in rows]


__all__ = [
    "PERTURBATIONS",
    "ExportedAgent",
    "Perturbation",
    "RobustnessError",
    "check_robustness_inputs",
    "evaluate_robustness",
    "get_perturbation",
    "load_agent",
    "normalized_scores",
    "perturbed_env",
    "rows_to_frame",
]
