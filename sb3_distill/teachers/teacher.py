"""The :class:`Teacher`: one frozen, uniform view of any SB3 / sb3-contrib agent, for distillation losses."""

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.type_aliases import GymEnv, PyTorchObs
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.teachers.envs import make_teacher_env
from sb3_distill.teachers.kinds import PolicyKind, count_parameters, policy_kind

ObsLike = np.ndarray | dict[str, np.ndarray] | th.Tensor | dict[str, th.Tensor]


class _RandomAgent:
    """Uniformly random actions behind SB3's ``predict()``, so that ``evaluate_policy`` measures a random policy."""

    def __init__(self, action_space: spaces.Space, n_envs: int) -> None:
        self.action_space = action_space
        self.n_envs = n_envs

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        return np.array([self.action_space.sample() for _ in range(self.n_envs)]), None


#: Teacher.reference_returns() results of this process: (fingerprint, env id, run folder, episodes, seed) -> returns.
_REFERENCE_RETURNS: dict[tuple[Any, ...], tuple[float, float]] = {}


def reference_returns(agent: Any, env: GymEnv, n_episodes: int = 10, seed: int = 0) -> tuple[list[float], list[float]]:
    """
    Episode returns of a uniformly random policy and of ``agent`` (deterministic): the zero and the one of
    teacher-normalized scores, (G - G_random) / (G_teacher - G_random).

    :param agent: anything with SB3's ``predict()`` (a :class:`Teacher`, a model)
    :param env: the env to measure on (``Monitor``-wrapped, e.g. ``teacher.make_env()``), reset and seeded here
    :param n_episodes: episodes for each of the two policies
    :param seed: seed of the env and of the random actions
    :return: ``(random_returns, agent_returns)``, one return per episode
    """
    env.action_space.seed(seed)
    returns = []
    for player, deterministic in ((_RandomAgent(env.action_space, getattr(env, "num_envs", 1)), False), (agent, True)):
        if isinstance(env, VecEnv):
            env.seed(seed)
        else:
            env.reset(seed=seed)
        episode_returns, _ = evaluate_policy(
            player, env, n_eval_episodes=n_episodes, deterministic=deterministic, return_episode_rewards=True
        )
        returns.append([float(value) for value in episode_returns])  # type: ignore[union-attr]
    return returns[0], returns[1]


def _per_stacked_frame(normalizer: VecNormalize, observation_space: spaces.Space, frame_stack: int | None) -> VecNormalize:
    """
    Statistics that normalize stacked observations frame by frame.

    rl-zoo3 normalizes before it stacks frames, so the statistics are those of one frame while the policy takes
    ``frame_stack`` of them, concatenated along the last axis (``VecFrameStack``). Repeating the statistics that many
    times normalizes each frame as in training. Only the zero padding of the first ``frame_stack - 1`` steps of an
    episode differs: training padded with normalized zeros, a raw env pads with raw zeros.
    """
    statistics = normalizer.obs_rms
    if not normalizer.norm_obs or isinstance(statistics, dict) or statistics.mean.shape == observation_space.shape:
        return normalizer
    if not frame_stack or (*statistics.mean.shape[:-1], statistics.mean.shape[-1] * frame_stack) != observation_space.shape:
        raise IncompatibleTeacherError(
            f"The teacher's VecNormalize statistics have shape {statistics.mean.shape} and its observations "
            f"{observation_space.shape} (frame_stack={frame_stack}): they do not belong together. Give the "
            "vecnormalize.pkl of the same run."
        )
    tiled = RunningMeanStd(shape=observation_space.shape)  # type: ignore[arg-type]
    tiled.mean, tiled.var, tiled.count = (
        np.tile(statistics.mean, frame_stack),
        np.tile(statistics.var, frame_stack),
        statistics.count,
    )
    # A shallow copy by hand: an unpickled VecNormalize has no env, and copy / deepcopy would look for one.
    stacked = object.__new__(type(normalizer))
    stacked.__dict__.update(normalizer.__dict__, obs_rms=tiled)
    return stacked


def _from_kind(name: str, doc: str) -> property:
    """A read-only property of the teacher that its kind of policy answers."""
    return property(lambda teacher: getattr(teacher._kind, name), doc=doc)


class Teacher:
    """
    A frozen teacher: for a batch of *raw* observations, what each distillation loss needs.

    The teacher's own ``VecNormalize`` observation statistics (if it was trained with them) are applied
    inside, so callers always pass observations as the environment produced them. What it can give depends on its
    kind of policy (:mod:`sb3_distill.teachers.kinds`); asking for what it cannot give raises
    :class:`~sb3_distill.errors.IncompatibleTeacherError`.

    :param policy: the teacher's SB3 policy (it is set to eval mode and its parameters frozen)
    :param algo: the algorithm name in rl-zoo3's spelling (``dqn``, ``ppo``, ``sac``...), informative
    :param env_id: today's id of the env the teacher was trained on, if known
    :param obs_normalizer: the teacher's ``VecNormalize`` (only its statistics are used), if any
    :param source: where the teacher came from (path, zoo id, Hub repo), for messages
    :param source_path: the model file it was loaded from, if any (never overwritten by ``save()``)
    :param device: torch device for the teacher's forward passes
    :param config: the rl-zoo3 hyperparameters the teacher was trained with (``config.yml``), if known
    :param env_kwargs: the keyword arguments its env was made with (rl-zoo3's ``args.yml``), if any
    """

    def __init__(
        self,
        policy: BasePolicy,
        algo: str = "unknown",
        env_id: str | None = None,
        obs_normalizer: VecNormalize | None = None,
        source: str = "",
        source_path: str | Path | None = None,
        device: th.device | str = "auto",
        config: dict[str, Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._kind: PolicyKind = policy_kind(policy)
        self.device = get_device(device)
        self.policy = policy.to(self.device)
        self.policy.set_training_mode(False)
        self.policy.requires_grad_(False)
        self.algo = algo
        self.env_id = env_id
        self.config = config or {}
        self.obs_normalizer = obs_normalizer
        if obs_normalizer is not None:
            # Statistics only: never updated, never tied to an env.
            obs_normalizer.training = False
            self.obs_normalizer = _per_stacked_frame(obs_normalizer, policy.observation_space, self.config.get("frame_stack"))
        self.source = source
        self.source_path = Path(source_path).resolve() if source_path is not None else None
        self.env_kwargs = env_kwargs or {}

    # ------------------------------------------------------------------ description
    @property
    def kind(self) -> str:
        """The kind of policy: ``q``, ``quantile``, ``actor_critic``, ``sac``, ``tqc``, ``crossq``, ``td3``, ``ars``."""
        return self._kind.name

    @property
    def observation_space(self) -> spaces.Space:
        return self.policy.observation_space

    @property
    def action_space(self) -> spaces.Space:
        return self.policy.action_space

    is_discrete = _from_kind("is_discrete", "Whether the action space is ``Discrete``.")
    has_q_values = _from_kind("has_q_values", "Whether :meth:`q_values` is available (DQN and QR-DQN teachers).")
    has_critic = _from_kind("has_critic", "Whether :meth:`values` is available (every kind but ARS).")
    has_distribution = _from_kind(
        "has_distribution",
        "Whether :meth:`distribution` is available (all but the deterministic TD3/DDPG and continuous ARS).",
    )

    def acting_network(self) -> th.nn.Module:
        """The part of the policy used to act (what a student replaces): Q-net, actor, or the policy branch."""
        return self._kind.acting_network()

    @functools.cached_property
    def fingerprint(self) -> str:
        """
        A digest of everything the teacher's outputs depend on (its weights and observation statistics), computed once:
        equal fingerprints give equal outputs, across processes (used to keep a saved teacher-output cache valid).
        """
        digest = hashlib.sha256()
        for name, tensor in self.policy.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        if self.obs_normalizer is not None:
            obs_rms = self.obs_normalizer.obs_rms
            for rms in obs_rms.values() if isinstance(obs_rms, dict) else [obs_rms]:
                digest.update(
                    np.asarray(rms.mean, dtype=np.float64).tobytes() + np.asarray(rms.var, dtype=np.float64).tobytes()
                )
        return digest.hexdigest()

    @property
    def num_parameters(self) -> int:
        """Parameters of the acting network (see :meth:`acting_network`)."""
        return count_parameters(self.acting_network())

    def __repr__(self) -> str:
        normalized = ", VecNormalize" if self.obs_normalizer is not None else ""
        return f"Teacher({self.algo} on {self.env_id or '?'} from {self.source or '?'}{normalized})"

    # ------------------------------------------------------------------ observations
    def _normalize_numpy(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        if self.obs_normalizer is None:
            return obs
        return self.obs_normalizer.normalize_obs(obs)

    def obs_to_tensor(self, obs: ObsLike) -> PyTorchObs:
        """
        Raw observations (numpy or torch, batched) to the tensor the teacher's network takes.

        :param obs: a batch of raw observations
        :return: the same, normalized with the teacher's statistics, on the teacher's device
        """
        if self.obs_normalizer is not None:
            if isinstance(obs, dict):
                obs = {key: value.cpu().numpy() if isinstance(value, th.Tensor) else value for key, value in obs.items()}
            elif isinstance(obs, th.Tensor):
                obs = obs.cpu().numpy()
            obs = self._normalize_numpy(obs)  # type: ignore[arg-type]
        if isinstance(obs, th.Tensor):
            return obs.to(self.device)
        if isinstance(obs, dict) and all(isinstance(value, th.Tensor) for value in obs.values()):
            return {key: value.to(self.device) for key, value in obs.items()}  # type: ignore[union-attr]
        tensor, _ = self.policy.obs_to_tensor(obs)  # type: ignore[arg-type]
        return tensor

    # ------------------------------------------------------------------ what losses use
    @th.no_grad()
    def q_values(self, obs: ObsLike) -> th.Tensor:
        """
        :param obs: a batch of raw observations
        :return: Q-values, shape (batch, n_actions); QR-DQN: mean over quantiles
        """
        return self._kind.q_values(self.obs_to_tensor(obs))

    @th.no_grad()
    def action_logits(self, obs: ObsLike) -> th.Tensor:
        """
        Unnormalized log-probabilities of a discrete teacher, so that ``softmax(logits / T)`` is its policy.

        For Q-value teachers the logits are the Q-values (the policy is ``softmax(Q / T)``).

        :param obs: a batch of raw observations
        :return: shape (batch, n_actions)
        """
        return self._kind.action_logits(self.obs_to_tensor(obs))

    @th.no_grad()
    def distribution(self, obs: ObsLike, temperature: float = 1.0) -> Distribution:
        """
        The teacher's action distribution (an SB3 ``Distribution``).

        Discrete teachers: categorical ``softmax(logits / T)``. PPO/A2C/TRPO on continuous actions: their
        diagonal Gaussian. SAC/TQC/CrossQ: the squashed Gaussian of the actor.

        :param obs: a batch of raw observations
        :param temperature: softmax temperature, for discrete teachers
        :return: the distribution for the batch
        """
        return self._kind.distribution(self.obs_to_tensor(obs), temperature)

    @th.no_grad()
    def actions(self, obs: ObsLike) -> th.Tensor:
        """
        The teacher's deterministic actions, in the env's action space (as ``predict()`` returns them).

        :param obs: a batch of raw observations
        :return: discrete: shape (batch,) of action indices; continuous: shape (batch, action_dim)
        """
        return self._kind.actions(self.obs_to_tensor(obs))

    @th.no_grad()
    def values(self, obs: ObsLike, temperature: float | None = None) -> th.Tensor:
        """
        The teacher's state value V_T(s).

        PPO/A2C/TRPO: the critic. DQN/QR-DQN: ``max_a Q`` (or, with ``temperature``, the softmax(Q/T)-weighted
        mean). SAC/TD3/TQC/CrossQ: the critic at the teacher's deterministic action, min over critics
        (TQC: mean over quantiles).

        :param obs: a batch of raw observations
        :param temperature: for Q-value teachers, weight Q by softmax(Q/T) instead of taking the max
        :return: shape (batch,)
        """
        return self._kind.values(self.obs_to_tensor(obs), temperature)

    # ------------------------------------------------------------------ SB3 interface
    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        SB3's ``predict()``, so ``evaluate_policy(teacher, env)`` works. Observations are raw.

        :param observation: the raw observation(s)
        :param state: unused (feed-forward teachers)
        :param episode_start: unused
        :param deterministic: whether to take the greedy / mean action
        :return: the action(s) and ``None``
        """
        return self.policy.predict(self._normalize_numpy(observation), state, episode_start, deterministic)

    def to(self, device: th.device | str) -> "Teacher":
        """
        :param device: torch device
        :return: this teacher, moved to ``device``
        """
        self.device = get_device(device)
        self.policy = self.policy.to(self.device)
        return self

    def make_env(
        self, n_envs: int = 1, seed: int | None = None, vec_env_cls: type[VecEnv] | None = None, **env_kwargs: Any
    ) -> VecEnv:
        """
        The env as rl-zoo3 built it for this teacher, for students and evaluations: its ``env_wrapper`` (e.g.
        ``TimeFeatureWrapper``), ``vec_env_wrapper``, ``frame_stack`` and ``env_kwargs`` from the run folder, each
        env ``Monitor``-wrapped, *without* the teacher's ``VecNormalize`` (the teacher normalizes its own inputs, and
        a student its own). A teacher without a run folder gets its plain env.

        :param n_envs: number of envs
        :param seed: seed of the first env (the others get ``seed + i``)
        :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
        :param env_kwargs: keyword arguments of the env's constructor, over the teacher's own
        :return: the ``VecEnv``
        """
        return make_teacher_env(self.env_id, self.config, {**self.env_kwargs, **env_kwargs}, n_envs, seed, vec_env_cls)

    def reference_returns(self, env_id: str | None = None, n_episodes: int = 10, seed: int = 0) -> tuple[float, float]:
        """
        Mean return of a uniformly random policy and of this teacher (deterministic), measured once and cached.

        Used to normalize scores ((G - G_random) / (G_teacher - G_random)) and by the ``"qdagger"`` coefficient.
        These episodes run on a separate env (the teacher's own, :meth:`make_env`) and are not student training steps.

        :param env_id: env to measure on (default: the teacher's own)
        :param n_episodes: episodes for each of the two policies
        :param seed: seed of the evaluation env
        :return: ``(random_return, teacher_return)``
        """
        if env_id is None and self.env_id is None:
            raise IncompatibleTeacherError(
                f"reference_returns() needs an env id and {self!r} has none: pass env_id=..., "
                "or give the returns yourself (reference_returns=(random, teacher))."
            )
        own = env_id in (None, self.env_id)
        # Per process and per teacher content (weights, statistics, and for its own env the run folder whose wrappers
        # make it): loading the same teacher again does not measure again
        key = (self.fingerprint, env_id or self.env_id, str(self.source_path) if own else None, n_episodes, seed)
        if key not in _REFERENCE_RETURNS:
            env = self.make_env(seed=seed) if own else make_teacher_env(env_id, seed=seed)
            random_returns, teacher_returns = reference_returns(self, env, n_episodes, seed)
            env.close()
            _REFERENCE_RETURNS[key] = (float(np.mean(random_returns)), float(np.mean(teacher_returns)))
        return _REFERENCE_RETURNS[key]
