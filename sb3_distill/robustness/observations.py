"""
What the student observes: :class:`StudentObservation` and its transforms.

One channel for privileged teachers, noisy sensors, hidden state and delays: the wrapper gives the student
``transform(obs)`` and puts the wrapped env's own observation into ``info["teacher_observation"]``
(:data:`TEACHER_OBSERVATION_KEY`) at every reset and step, where wrappers added on top (``Monitor``, frame stacking,
SB3 ``VecEnv`` / ``VecNormalize`` / ``VecFrameStack``) leave it untouched. A transform is any callable
``obs -> obs``; the transforms here also have:

* ``transform_space(space)``: the student's observation space (else the wrapper infers it from a sample);
* ``reset()``: called at every env reset, before the first observation of the episode (delays keep a buffer);
* ``seed(seed)``: called when the env is reset with a seed (random transforms draw from their own generator, never
  from the env's, so that a perturbed env starts its episodes from the same states as the nominal one).

**The scale of an observation** (:func:`observation_scale`): noise levels and adversarial budgets are relative to it,
so that one level means the same on every dimension. Per dimension: half the width of the observation space's bounds
where both bounds are finite (CartPole's cart position: 4.8, its pole angle: 0.42 rad); else the standard deviation of
that dimension over a short rollout of uniformly random actions on the nominal env (1,000 steps, seeded: the same
scale for every agent evaluated on the env). ``method="rollout"`` uses the rollout's std on every dimension (for envs
whose bounds are far wider than what is observed, e.g. LunarLander's velocities, bounded at ±10), and a float or an
array gives the scale directly (``1.0``: absolute noise). A dimension that does not vary in the rollout has scale 0:
it gets no noise.
"""

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# The channel's key (the teacher's observation, the wrapped env's own, at reset and at every step): defined by the
# algorithms' side of the channel, which reads it.
from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY

#: Observation indices of velocities, per env name (the id without its version): what a partially observed student
#: is not shown (:func:`hide_velocities`).
VELOCITY_INDICES: dict[str, tuple[int, ...]] = {
    "CartPole": (1, 3),  # cart velocity, pole angular velocity
    "LunarLander": (2, 3, 5),  # horizontal and vertical velocity, angular velocity
    "Acrobot": (4, 5),  # angular velocities of the two links
    "MountainCar": (1,),  # velocity
    "Pendulum": (2,),  # angular velocity
}


@runtime_checkable
class Resettable(Protocol):
    def reset(self) -> None: ...


def _env_name(env_id: str) -> str:
    return env_id.split("/")[-1].rsplit("-v", 1)[0]


def _box(space: spaces.Space, where: str) -> spaces.Box:
    if not isinstance(space, spaces.Box):
        raise TypeError(f"{where} needs a Box observation space (a vector or an image), not {space}.")
    return space


def student_space(transform: Callable[[Any], Any], space: spaces.Space) -> spaces.Space:
    """
    The observation space of ``transform``'s outputs: ``transform.transform_space(space)`` if it has it, else inferred
    from ``transform`` applied to a sample of ``space`` (``space`` itself when shape and dtype are kept, else an
    unbounded ``Box``; a stateful transform is reset after the sample).

    :param transform: ``obs -> obs``
    :param space: the space of its inputs
    :return: the space of its outputs
    """
    if hasattr(transform, "transform_space"):
        return transform.transform_space(space)
    sample = np.asarray(transform(space.sample()))
    if isinstance(transform, Resettable):
        transform.reset()  # the sample must not stay in a stateful transform
    if isinstance(space, spaces.Box) and sample.shape == space.shape and sample.dtype == space.dtype:
        return space
    if np.issubdtype(sample.dtype, np.integer):
        info = np.iinfo(sample.dtype)
        return spaces.Box(info.min, info.max, sample.shape, sample.dtype)
    if not np.issubdtype(sample.dtype, np.floating):
        raise TypeError(
            f"StudentObservation: cannot infer the student's observation space from a {sample.dtype} sample: "
            "pass observation_space=..."
        )
    return spaces.Box(-np.inf, np.inf, sample.shape, sample.dtype)


class StudentObservation(gym.Wrapper):
    """
    The student sees ``transform(obs)``; the teacher gets the wrapped env's own ``obs`` in
    ``info["teacher_observation"]`` at reset and at every step (at the step that ends an episode: the teacher's view
    of the terminal observation). Over an env that already supplies teacher observations (a
    :class:`~sb3_distill.robustness.RandomDynamics`, another ``StudentObservation``), the teacher keeps those: the
    transforms stack up for the student only.

    :param env: the env whose observations are the teacher's
    :param transform: ``obs -> student's obs`` (a function, or one of this module's transforms: noise, hidden
        dimensions, delays, adversarial perturbations)
    :param observation_space: the student's observation space; default: ``transform.transform_space(...)`` if the
        transform has it, else inferred from ``transform`` applied to a sample of the env's space (the env's own space
        when shape and dtype are kept, else an unbounded ``Box``)
    """

    def __init__(self, env: gym.Env, transform: Callable[[Any], Any], observation_space: spaces.Space | None = None) -> None:
        super().__init__(env)
        if not callable(transform):
            raise TypeError(f"StudentObservation: transform must be a callable obs -> obs, not {type(transform).__name__}.")
        self.transform = transform
        try:  # an env below that supplies teacher observations keeps them (the most privileged view wins)
            inner: spaces.Space | None = env.get_wrapper_attr("teacher_observation_space")
        except AttributeError:
            inner = None
        self._inner_supplies = inner is not None
        #: what the teacher observes: the wrapped env's own observation space (or the teacher space of the env below)
        self.teacher_observation_space = env.observation_space if inner is None else inner
        if observation_space is None:
            observation_space = student_space(transform, env.observation_space)
        self.observation_space = observation_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None and hasattr(self.transform, "seed"):
            self.transform.seed(seed)
        if isinstance(self.transform, Resettable):
            self.transform.reset()
        return self.transform(obs), self._with_teacher_observation(obs, info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.transform(obs), reward, terminated, truncated, self._with_teacher_observation(obs, info)

    def _with_teacher_observation(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        if not self._inner_supplies:
            info[TEACHER_OBSERVATION_KEY] = _copy(obs)
        return info


def _copy(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: np.array(value, copy=True) for key, value in obs.items()}
    return np.array(obs, copy=True)


class _Seeded:
    """A transform with its own random generator, reseeded by :class:`StudentObservation` at a seeded reset."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        """
        :param seed: the new seed of the transform's random generator
        """
        self.rng = np.random.default_rng(seed)


class GaussianNoise(_Seeded):
    """
    ``obs + N(0, (sigma · scale)²)`` per dimension, clipped to the observation space's finite bounds (images stay
    ``uint8``).

    :param sigma: the noise's standard deviation, in units of ``scale``
    :param scale: per-dimension scale (see :func:`observation_scale`), or a float (``1.0``: absolute noise)
    :param space: the observation space (for its bounds and dtype); ``None``: no clipping
    :param seed: seed of the noise
    """

    def __init__(
        self, sigma: float, scale: float | np.ndarray = 1.0, space: spaces.Space | None = None, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"GaussianNoise: sigma must be a finite number >= 0, not {sigma}.")
        self.sigma = float(sigma)
        self.std = self.sigma * np.asarray(scale, dtype=np.float64)
        self.space = _box(space, "GaussianNoise") if space is not None else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        noisy = obs + self.rng.normal(size=np.shape(obs)) * self.std
        return _fit(noisy, self.space, np.asarray(obs).dtype)


def _fit(obs: np.ndarray, space: spaces.Box | None, dtype: Any) -> np.ndarray:
    """``obs`` clipped to the finite bounds of ``space`` and cast to its dtype (rounded for integer images)."""
    if space is not None:
        obs = np.clip(
            obs, np.where(np.isfinite(space.low), space.low, -np.inf), np.where(np.isfinite(space.high), space.high, np.inf)
        )
        dtype = space.dtype
    if np.issubdtype(dtype, np.integer):
        obs = np.rint(obs)
    return np.asarray(obs, dtype=dtype)


class HideDimensions:
    """
    The student's observation without some dimensions (a vector observation ``obs[keep]``).

    :param hidden: the indices to hide
    :param n_dims: the size of the observation vector
    """

    def __init__(self, hidden: list[int] | tuple[int, ...], n_dims: int) -> None:
        wrong = [index for index in hidden if not 0 <= index < n_dims]
        if wrong or not hidden or len(set(hidden)) == n_dims:
            raise ValueError(
                f"HideDimensions: indices {list(hidden)} do not fit an observation of {n_dims} dimensions (each must be "
                f"in [0, {n_dims - 1}], and at least one dimension must be left)."
            )
        self.hidden = tuple(sorted(set(hidden)))
        self.keep = np.array([index for index in range(n_dims) if index not in self.hidden])

    def transform_space(self, space: spaces.Space) -> spaces.Box:
        """
        :param space: the full observation space
        :return: the student's, without the hidden dimensions
        """
        box = _box(space, "HideDimensions")
        if box.shape != (len(self.keep) + len(self.hidden),):
            raise ValueError(f"HideDimensions was made for {len(self.keep) + len(self.hidden)} dimensions, not {box.shape}.")
        return spaces.Box(box.low[self.keep], box.high[self.keep], dtype=box.dtype)  # type: ignore[arg-type]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs)[..., self.keep]


def hide_velocities(env_id: str, n_dims: int | None = None) -> HideDimensions:
    """
    The transform that hides the velocities of a classic env (:data:`VELOCITY_INDICES`), e.g. for a student that
    stacks frames while its privileged teacher sees the full state.

    :param env_id: e.g. ``"CartPole-v1"``, ``"LunarLander-v3"``
    :param n_dims: the observation size (default: read from the env's registered space)
    :return: the transform
    """
    name = _env_name(env_id)
    if name not in VELOCITY_INDICES:
        raise ValueError(
            f"No velocity indices are known for {env_id!r} (known: {', '.join(VELOCITY_INDICES)}): "
            "use HideDimensions(indices, n_dims) with the indices to hide."
        )
    if n_dims is None:
        env = gym.make(env_id)
        n_dims = int(np.prod(env.observation_space.shape or (0,)))
        env.close()
    return HideDimensions(VELOCITY_INDICES[name], n_dims)


class Delay:
    """
    The observation of ``steps`` steps ago (the first observation of an episode until there is one that old).

    :param steps: the delay, in env steps (0: none)
    """

    def __init__(self, steps: int) -> None:
        if int(steps) != steps or steps < 0:
            raise ValueError(f"Delay: steps must be a whole number >= 0, not {steps}.")
        self.steps = int(steps)
        self.buffer: deque[Any] = deque(maxlen=self.steps + 1)

    def transform_space(self, space: spaces.Space) -> spaces.Space:
        """
        :param space: the observation space
        :return: the same (a delay changes when, not what)
        """
        return space

    def reset(self) -> None:
        """Forget the last episode's observations."""
        self.buffer.clear()

    def __call__(self, obs: Any) -> Any:
        if not self.buffer:
            self.buffer.extend([obs] * (self.steps + 1))
        else:
            self.buffer.append(obs)
        return self.buffer[0]


class Compose:
    """
    Transforms applied in order (e.g. hide the velocities, then add noise to what is left).

    :param transforms: the transforms
    """

    def __init__(self, *transforms: Callable[[Any], Any]) -> None:
        self.transforms = transforms

    def transform_space(self, space: spaces.Space) -> spaces.Space:
        """
        :param space: the observation space
        :return: the space after every transform
        """
        for transform in self.transforms:
            space = student_space(transform, space)
        return space

    def seed(self, seed: int | None) -> None:
        """
        :param seed: passed to every transform that takes one (each gets ``seed + its position``)
        """
        for index, transform in enumerate(self.transforms):
            if hasattr(transform, "seed"):
                transform.seed(None if seed is None else seed + index)

    def reset(self) -> None:
        """Reset every transform that keeps state."""
        for transform in self.transforms:
            if isinstance(transform, Resettable):
                transform.reset()

    def __call__(self, obs: Any) -> Any:
        for transform in self.transforms:
            obs = transform(obs)
        return obs


def observation_scale(
    env: gym.Env | Callable[[], gym.Env], method: str | float | np.ndarray = "auto", n_steps: int = 1_000, seed: int = 0
) -> np.ndarray:
    """
    The per-dimension scale that noise levels and adversarial budgets are relative to (see the module's docstring).

    :param env: the nominal env, or a function that makes it (the rollout resets and steps it)
    :param method: ``"auto"`` (bounds where finite, else the rollout's std), ``"rollout"`` (the rollout's std on every
        dimension), ``"bounds"`` (bounds only: every bound must be finite), or the scale itself (a float or an array)
    :param n_steps: steps of the random-action rollout
    :param seed: seed of the rollout (env and actions)
    :return: the scale, an array of the observation's shape
    """
    if not isinstance(method, str):
        return np.asarray(method, dtype=np.float64)
    if method not in ("auto", "rollout", "bounds"):
        raise ValueError(f"Unknown scale method {method!r}: use 'auto', 'rollout', 'bounds', or a number / an array.")
    made = not isinstance(env, gym.Env)
    environment: gym.Env = env() if made else env  # type: ignore[operator,assignment]
    try:
        box = _box(environment.observation_space, "observation_scale")
        finite = np.isfinite(box.low) & np.isfinite(box.high)
        half_width = np.where(finite, (box.high.astype(np.float64) - box.low) / 2.0, np.nan)
        if method == "bounds":
            if not finite.all():
                raise ValueError(
                    f"scale='bounds' needs finite observation bounds, and {int((~finite).sum())} dimensions are "
                    "unbounded: use 'auto' or 'rollout'."
                )
            return half_width
        if method == "auto" and finite.all():
            return half_width
        std = _rollout_std(environment, n_steps, seed)
        return np.where(finite, half_width, std) if method == "auto" else std
    finally:
        if made:
            environment.close()


def _rollout_std(env: gym.Env, n_steps: int, seed: int) -> np.ndarray:
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations = [np.asarray(obs, dtype=np.float64)]
    for _ in range(n_steps):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(np.asarray(obs, dtype=np.float64))
        if terminated or truncated:
            obs, _ = env.reset()
            observations.append(np.asarray(obs, dtype=np.float64))
    return np.std(np.stack(observations), axis=0)


__all__ = [
    "TEACHER_OBSERVATION_KEY",
    "VELOCITY_INDICES",
    "Compose",
    "Delay",
    "GaussianNoise",
    "HideDimensions",
    "StudentObservation",
    "hide_velocities",
    "observation_scale",
    "student_space",
]
