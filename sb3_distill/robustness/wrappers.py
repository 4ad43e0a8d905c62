"""
Perturbations of actions and of the env's physics: :class:`ActionNoise`, :class:`StickyActions`,
:func:`shift_dynamics`.

Dynamics shifts multiply a physical constant of the env by a factor:

* classic control: any numeric attribute of ``env.unwrapped`` (CartPole's ``length`` — half the pole's length —,
  ``masspole``, ``masscart``, ``force_mag``, ``gravity``, ``tau``; Acrobot's ``LINK_MASS_1``, ``LINK_LENGTH_1``...;
  MountainCar's ``force``, ``gravity``; Pendulum's ``g``, ``m``, ``l``, ``max_torque``); CartPole's derived constants
  (``total_mass``, ``polemass_length``) follow;
* MuJoCo, through ``env.unwrapped.model``: ``mass`` (every body's mass; ``mass:NAME`` one body's, e.g.
  ``mass:torso``), ``friction`` (the sliding friction of every geom), ``actuator_gain`` (every actuator's gain);
* Box2D envs (LunarLander) fix their physics at construction: their ``gravity``, ``wind_power`` and
  ``turbulence_power`` are ``gymnasium.make`` keyword arguments (perturbations of the same names in
  :func:`~sb3_distill.robustness.evaluate_robustness`), not shifts of a built env.
"""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: MuJoCo parameters (name → the ``model`` field and the part of it that is scaled).
MUJOCO_PARAMETERS: dict[str, str] = {
    "mass": "body_mass",
    "friction": "geom_friction[:, 0] (sliding friction)",
    "actuator_gain": "actuator_gainprm[:, 0]",
}


class ActionNoise(gym.ActionWrapper):
    """
    Noise on the agent's actions before the env executes them. ``Box`` actions: ``a + N(0, (level · half-range)²)``
    clipped to the bounds. ``Discrete`` (and ``MultiDiscrete``) actions: with probability ``level`` a uniformly random
    action instead of the agent's.

    :param env: the env
    :param level: the noise's standard deviation relative to half the action range (Box; finite bounds needed), or
        the probability of a random action (discrete, in [0, 1])
    :param seed: seed of the noise (reseeded by a seeded ``reset``)
    """

    def __init__(self, env: gym.Env, level: float, seed: int | None = None) -> None:
        super().__init__(env)
        space = env.action_space
        if isinstance(space, spaces.Box):
            if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
                raise ValueError("ActionNoise on Box actions needs finite action bounds (the noise is relative to them).")
        elif not isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            raise ValueError(f"ActionNoise supports Box, Discrete and MultiDiscrete actions, not {space}.")
        if not np.isfinite(level) or level < 0 or (not isinstance(space, spaces.Box) and level > 1):
            raise ValueError(f"ActionNoise: level {level} is out of range ([0, 1] for discrete actions, >= 0 for Box).")
        self.level = float(level)
        self.rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return super().reset(seed=seed, options=options)

    def action(self, action: Any) -> Any:
        space = self.env.action_space
        if isinstance(space, spaces.Box):
            half_range = (space.high.astype(np.float64) - space.low) / 2.0
            noisy = np.asarray(action, dtype=np.float64) + self.rng.normal(size=space.shape) * self.level * half_range
            return np.clip(noisy, space.low, space.high).astype(space.dtype)
        if self.rng.random() >= self.level:
            return action
        if isinstance(space, spaces.Discrete):
            return space.start + self.rng.integers(space.n)
        assert isinstance(space, spaces.MultiDiscrete)
        return space.start + self.rng.integers(space.nvec)


class StickyActions(gym.Wrapper):
    """
    With probability ``level`` the env repeats the previous action instead of the agent's (Machado et al. 2018): a
    slow or unreliable actuator.

    :param env: the env
    :param level: the probability of repeating the previous action, in [0, 1]
    :param seed: seed of the draws (reseeded by a seeded ``reset``)
    """

    def __init__(self, env: gym.Env, level: float, seed: int | None = None) -> None:
        super().__init__(env)
        if not np.isfinite(level) or not 0 <= level <= 1:
            raise ValueError(f"StickyActions: level {level} is out of range: a probability in [0, 1].")
        self.level = float(level)
        self.rng = np.random.default_rng(seed)
        self.previous: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.previous = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        if self.previous is not None and self.rng.random() < self.level:
            action = self.previous
        self.previous = action
        return self.env.step(action)


def _mujoco_field(model: Any, parameter: str) -> tuple[np.ndarray, Any]:
    """The array of ``model`` a MuJoCo parameter scales, and the index of the part that is scaled."""
    name, _, body = parameter.partition(":")
    if name == "mass":
        if not body:
            return model.body_mass, slice(None)
        import mujoco

        body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
        if body_id < 0:
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(model.nbody)]
            raise ValueError(f"No body {body!r} in this MuJoCo model: its bodies are {', '.join(map(str, names))}.")
        return model.body_mass, body_id
    if body:
        raise ValueError(f"Only 'mass' takes a body name ('mass:torso'), not {parameter!r}.")
    if name == "friction":
        return model.geom_friction, (slice(None), 0)
    if name == "actuator_gain":
        return model.actuator_gainprm, (slice(None), 0)
    raise ValueError(f"Unknown MuJoCo parameter {parameter!r}: use one of {', '.join(MUJOCO_PARAMETERS)} (or 'mass:BODY').")


def _classic_attribute(env: Any, parameter: str) -> float:
    if hasattr(env, "world"):  # Box2D: the world is built with its constants
        raise ValueError(
            f"{type(env).__name__} (Box2D) fixes its physics when it is built: use the perturbations 'gravity', "
            "'wind_power' or 'turbulence_power' (gymnasium.make keyword arguments) instead of 'dynamics:...'."
        )
    value = getattr(env, parameter, None)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        numeric = sorted(
            name
            for name in set(dir(env)) - set(dir(gym.Env))
            if not name.startswith("_") and isinstance(getattr(env, name, None), (int, float)) and name.upper() != "METADATA"
        )
        raise ValueError(
            f"{type(env).__name__} has no numeric constant {parameter!r} to shift: its numeric attributes are "
            f"{', '.join(numeric)}."
        )
    return float(value)


def check_dynamics(env: gym.Env, parameter: str) -> None:
    """
    Raise a clear error if ``parameter`` cannot be shifted in ``env`` (before anything runs).

    :param env: the env
    :param parameter: see :func:`shift_dynamics`
    """
    unwrapped = env.unwrapped
    if hasattr(unwrapped, "model") and hasattr(unwrapped.model, "body_mass"):
        _mujoco_field(unwrapped.model, parameter)
    else:
        _classic_attribute(unwrapped, parameter)


def shift_dynamics(env: gym.Env, parameter: str, factor: float) -> gym.Env:
    """
    Multiply a physical constant of ``env`` by ``factor``, in place (see the module's docstring for the parameters).

    :param env: the env (any wrappers: the change is made on ``env.unwrapped``)
    :param parameter: an attribute of a classic-control env (``length``, ``masspole``, ``force_mag``...), or a MuJoCo
        parameter (``mass``, ``mass:BODY``, ``friction``, ``actuator_gain``)
    :param factor: the multiplier (> 0)
    :return: ``env``
    """
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"A dynamics shift multiplies a constant by a factor > 0, not {factor}.")
    check_dynamics(env, parameter)
    unwrapped: Any = env.unwrapped
    if hasattr(unwrapped, "model") and hasattr(unwrapped.model, "body_mass"):
        array, index = _mujoco_field(unwrapped.model, parameter)
        array[index] = array[index] * factor
        return env
    setattr(unwrapped, parameter, _classic_attribute(unwrapped, parameter) * factor)
    update_derived_constants(unwrapped)
    return env


def update_derived_constants(unwrapped: Any) -> None:
    """
    Recompute the constants a classic-control env derives from others in its ``__init__`` (CartPole's ``total_mass``
    and ``polemass_length``), after some of those were changed in place.

    :param unwrapped: the env's ``env.unwrapped``
    """
    if hasattr(unwrapped, "polemass_length") and hasattr(unwrapped, "masspole"):
        unwrapped.total_mass = unwrapped.masspole + unwrapped.masscart
        unwrapped.polemass_length = unwrapped.masspole * unwrapped.length


class ShiftDynamics(gym.Wrapper):
    """
    An env whose physical constants are multiplied by factors, once, when it is made: :func:`shift_dynamics` as a
    wrapper class, for what takes wrapper classes (SB3's ``make_vec_env(wrapper_class=...)``, rl-zoo3's
    ``env_wrapper`` hyperparameter: ``scripts/train_teachers.py --dynamics force_mag=0.25`` trains a teacher there,
    and the teacher's ``make_env()`` rebuilds its shifted env from the run's ``config.yml``).

    :param env: the env
    :param shifts: ``{parameter: factor}`` (see :func:`shift_dynamics`), e.g. ``{"force_mag": 0.25}``
    """

    def __init__(self, env: gym.Env, shifts: dict[str, float]) -> None:
        super().__init__(env)
        if not shifts:
            raise ValueError("ShiftDynamics needs at least one {parameter: factor}, e.g. {'force_mag': 0.25}.")
        self.shifts = {str(parameter): float(factor) for parameter, factor in shifts.items()}
        for parameter, factor in self.shifts.items():
            shift_dynamics(env, parameter, factor)


__all__ = [
    "MUJOCO_PARAMETERS",
    "ActionNoise",
    "ShiftDynamics",
    "StickyActions",
    "check_dynamics",
    "shift_dynamics",
    "update_derived_constants",
]
