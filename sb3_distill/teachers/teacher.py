"""The :class:`Teacher`: one frozen, uniform view of any SB3 / sb3-contrib agent, for distillation losses."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.ars.policies import ARSPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.crossq.policies import CrossQPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from sb3_distill.errors import IncompatibleTeacherError

if TYPE_CHECKING:
    from stable_baselines3.common.monitor import Monitor

TeacherKind = Literal["q", "quantile", "actor_critic", "sac", "tqc", "crossq", "td3", "ars"]
ObsLike = np.ndarray | dict[str, np.ndarray] | th.Tensor | dict[str, th.Tensor]


def teacher_kind(policy: BasePolicy) -> TeacherKind:
    """
    The family of a policy, which decides what a teacher can give (Q-values, a distribution, a critic).

    :param policy: an SB3 or sb3-contrib policy
    :return: one of ``q``, ``quantile``, ``actor_critic``, ``sac``, ``tqc``, ``crossq``, ``td3``, ``ars``
    """
    if isinstance(policy, RecurrentActorCriticPolicy):
        raise IncompatibleTeacherError(
            "Recurrent teachers (RecurrentPPO) need a hidden state per env and are not supported as teachers; "
            "distill from a feed-forward agent (PPO, A2C, DQN, QR-DQN, SAC, TD3, TQC, ...)."
        )
    kinds: list[tuple[type[BasePolicy], TeacherKind]] = [
        (DQNPolicy, "q"),
        (QRDQNPolicy, "quantile"),
        (ActorCriticPolicy, "actor_critic"),
        (TQCPolicy, "tqc"),
        (CrossQPolicy, "crossq"),
        (SACPolicy, "sac"),
        (TD3Policy, "td3"),
        (ARSPolicy, "ars"),
    ]
    for policy_class, kind in kinds:
        if isinstance(policy, policy_class):
            return kind
    raise IncompatibleTeacherError(
        f"Unsupported teacher policy {type(policy).__name__}: supported are the policies of DQN, QR-DQN, "
        "PPO, A2C, TRPO, SAC, TD3, DDPG, TQC, CrossQ and ARS."
    )


def count_parameters(module: th.nn.Module) -> int:
    """
    :param module: a torch module
    :return: its number of parameters
    """
    return sum(p.numel() for p in module.parameters())


def random_policy_returns(env: "Monitor", n_episodes: int) -> list[float]:
    """
    Returns of a uniformly random policy, the zero of teacher-normalized scores.

    :param env: a ``Monitor``-wrapped env (seed it and its action space first for repeatable numbers)
    :param n_episodes: number of episodes
    :return: one return per episode
    """
    returns = []
    for _ in range(n_episodes):
        env.reset()
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        returns.append(float(env.get_episode_rewards()[-1]))
    return returns


class Teacher:
    """
    A frozen teacher: for a batch of *raw* observations, what each distillation loss needs.

    The teacher's own ``VecNormalize`` observation statistics (if it was trained with them) are applied
    inside, so callers always pass observations as the environment produced them.

    :param policy: the teacher's SB3 policy (it is set to eval mode and its parameters frozen)
    :param algo: the algorithm name in rl-zoo3's spelling (``dqn``, ``ppo``, ``sac``...), informative
    :param env_id: today's id of the env the teacher was trained on, if known
    :param obs_normalizer: the teacher's ``VecNormalize`` (only its statistics are used), if any
    :param source: where the teacher came from (path, zoo id, Hub repo), for messages
    :param source_path: the model file it was loaded from, if any (never overwritten by ``save()``)
    :param device: torch device for the teacher's forward passes
    :param config: the rl-zoo3 hyperparameters the teacher was trained with (``config.yml``), if known
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
    ) -> None:
        self.kind: TeacherKind = teacher_kind(policy)
        self.device = get_device(device)
        self.policy = policy.to(self.device)
        self.policy.set_training_mode(False)
        self.policy.requires_grad_(False)
        self.algo = algo
        self.env_id = env_id
        self.obs_normalizer = obs_normalizer
        if obs_normalizer is not None:
            # Statistics only: never updated, never tied to an env.
            obs_normalizer.training = False
        self.source = source
        self.source_path = Path(source_path).resolve() if source_path is not None else None
        self.config = config or {}
        self._reference_returns: dict[Any, tuple[float, float]] = {}

    # ------------------------------------------------------------------ description
    @property
    def _net(self) -> Any:
        # The policy's sub-networks differ per kind; torch types attribute access as Tensor | Module.
        return self.policy

    @property
    def observation_space(self) -> spaces.Space:
        return self.policy.observation_space

    @property
    def action_space(self) -> spaces.Space:
        return self.policy.action_space

    @property
    def is_discrete(self) -> bool:
        return isinstance(self.action_space, spaces.Discrete)

    @property
    def has_q_values(self) -> bool:
        """Whether :meth:`q_values` is available (DQN and QR-DQN teachers)."""
        return self.kind in ("q", "quantile")

    @property
    def has_critic(self) -> bool:
        """Whether :meth:`values` is available (every kind but ARS)."""
        return self.kind != "ars"

    @property
    def has_distribution(self) -> bool:
        """Whether :meth:`distribution` is available (all but the deterministic TD3/DDPG and continuous ARS)."""
        return self.kind not in ("td3",) and not (self.kind == "ars" and not self.is_discrete)

    def acting_network(self) -> th.nn.Module:
        """The part of the policy used to act (what a student replaces): Q-net, actor, or the whole policy."""
        if self.kind == "q":
            return self._net.q_net
        if self.kind == "quantile":
            return self._net.quantile_net
        if self.kind in ("sac", "tqc", "crossq", "td3"):
            return self._net.actor
        if self.kind == "actor_critic":
            policy = self.policy
            assert isinstance(policy, ActorCriticPolicy)
            # Features extractor + policy branch + action head: the value branch is not needed to act.
            modules = [policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net]
            return th.nn.ModuleList(modules)
        return self.policy

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
    def _require(self, ok: bool, what: str, fix: str) -> None:
        if not ok:
            raise IncompatibleTeacherError(f"{what} needs {fix}, but the teacher {self!r} is of kind '{self.kind}'.")

    @th.no_grad()
    def q_values(self, obs: ObsLike) -> th.Tensor:
        """
        :param obs: a batch of raw observations
        :return: Q-values, shape (batch, n_actions); QR-DQN: mean over quantiles
        """
        self._require(self.has_q_values, "q_values()", "a DQN or QR-DQN teacher")
        tensor = self.obs_to_tensor(obs)
        if self.kind == "q":
            return self._net.q_net(tensor)
        return self._net.quantile_net(tensor).mean(dim=1)

    @th.no_grad()
    def action_logits(self, obs: ObsLike) -> th.Tensor:
        """
        Unnormalized log-probabilities of a discrete teacher, so that ``softmax(logits / T)`` is its policy.

        For Q-value teachers the logits are the Q-values (the policy is ``softmax(Q / T)``).

        :param obs: a batch of raw observations
        :return: shape (batch, n_actions)
        """
        self._require(self.is_discrete, "action_logits()", "a teacher with a discrete action space")
        if self.has_q_values:
            return self.q_values(obs)
        tensor = self.obs_to_tensor(obs)
        if self.kind == "ars":
            features = self._net.extract_features(tensor, self._net.features_extractor)
            return self._net.action_net(features)
        return self._net.get_distribution(tensor).distribution.logits

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
        self._require(self.has_distribution, "distribution()", "a stochastic teacher (not TD3/DDPG)")
        if self.is_discrete:
            assert isinstance(self.action_space, spaces.Discrete)
            logits = self.action_logits(obs) / temperature
            return CategoricalDistribution(int(self.action_space.n)).proba_distribution(logits)
        tensor = self.obs_to_tensor(obs)
        if self.kind == "actor_critic":
            return self._net.get_distribution(tensor)
        actor = self._net.actor
        mean_actions, log_std, kwargs = actor.get_action_dist_params(tensor)
        return actor.action_dist.proba_distribution(mean_actions, log_std, **kwargs)

    @th.no_grad()
    def actions(self, obs: ObsLike) -> th.Tensor:
        """
        The teacher's deterministic actions, in the env's action space (as ``predict()`` returns them).

        :param obs: a batch of raw observations
        :return: discrete: shape (batch,) of action indices; continuous: shape (batch, action_dim)
        """
        tensor = self.obs_to_tensor(obs)
        actions = self.policy._predict(tensor, deterministic=True)
        if isinstance(self.action_space, spaces.Box):
            low = th.as_tensor(self.action_space.low, device=actions.device)
            high = th.as_tensor(self.action_space.high, device=actions.device)
            if self.policy.squash_output:
                actions = low + 0.5 * (actions + 1.0) * (high - low)
            else:
                actions = th.max(th.min(actions, high), low)
        return actions

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
        self._require(self.has_critic, "values()", "a teacher with a critic (not ARS)")
        if self.has_q_values:
            q_values = self.q_values(obs)
            if temperature is None:
                return q_values.max(dim=1).values
            return (th.softmax(q_values / temperature, dim=1) * q_values).sum(dim=1)
        tensor = self.obs_to_tensor(obs)
        if self.kind == "actor_critic":
            return self._net.predict_values(tensor).flatten()
        actions = self._net._predict(tensor, deterministic=True)
        critic_values = self._net.critic(tensor, actions)
        if self.kind == "tqc":
            return critic_values.mean(dim=(1, 2))
        return th.cat(critic_values, dim=1).min(dim=1).values

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

    def reference_returns(self, env_id: str | None = None, n_episodes: int = 10, seed: int = 0) -> tuple[float, float]:
        """
        Mean return of a uniformly random policy and of this teacher (deterministic), measured once and cached.

        Used to normalize scores ((G - G_random) / (G_teacher - G_random)) and by the ``"qdagger"`` coefficient.
        These episodes run on a separate env and are not student training steps.

        :param env_id: env to measure on (default: the teacher's own)
        :param n_episodes: episodes for each of the two policies
        :param seed: seed of the evaluation env
        :return: ``(random_return, teacher_return)``
        """
        import gymnasium as gym
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.monitor import Monitor

        env_id = env_id or self.env_id
        if env_id is None:
            raise IncompatibleTeacherError(
                f"reference_returns() needs an env id and {self!r} has none: pass env_id=..., "
                "or give the returns yourself (reference_returns=(random, teacher))."
            )
        key = (env_id, n_episodes, seed)
        if key not in self._reference_returns:
            env = Monitor(gym.make(env_id))
            env.reset(seed=seed)
            env.action_space.seed(seed)
            random_returns = random_policy_returns(env, n_episodes)
            teacher_mean, _ = evaluate_policy(self, env, n_eval_episodes=n_episodes, deterministic=True)
            env.close()
            self._reference_returns[key] = (float(np.mean(random_returns)), float(teacher_mean))  # type: ignore[arg-type]
        return self._reference_returns[key]
