"""
Kinds of policies: what each family of SB3 / sb3-contrib policies can give a distillation loss, an export or a count.

One class per family, each implementing only what its networks can give (Q-values, logits, a distribution, a
critic); what it cannot give raises :class:`~sb3_distill.errors.IncompatibleTeacherError` saying what is needed.
:func:`policy_kind` picks the class of a policy; :class:`~sb3_distill.teachers.Teacher` and the exporter use it.
Every method takes observations already preprocessed into tensors (normalization is the caller's business).
"""

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib.ars.policies import ARSPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.crossq.policies import CrossQPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.teachers.spaces import env_actions


class PolicyKind:
    """
    What one family of policies can give. Subclasses override what their networks provide.

    :param policy: the policy (not copied: the kind reads its networks)
    """

    #: short name, e.g. ``"q"`` (it is ``Teacher.kind``)
    name: ClassVar[str] = "unknown"
    #: the algorithms whose policies these are, for messages
    description: ClassVar[str] = ""
    #: whether :meth:`q_values` is available
    has_q_values: ClassVar[bool] = False
    #: whether :meth:`values` is available
    has_critic: ClassVar[bool] = True

    def __init__(self, policy: BasePolicy) -> None:
        self.policy = policy

    @property
    def _net(self) -> Any:
        # torch types a module's attributes as Tensor | Module; each kind knows which sub-networks its policy has.
        return self.policy

    @property
    def is_discrete(self) -> bool:
        """Whether the action space is ``Discrete``."""
        return isinstance(self.policy.action_space, spaces.Discrete)

    @property
    def has_distribution(self) -> bool:
        """Whether :meth:`distribution` is available."""
        return True

    def _cannot(self, what: str, needs: str) -> IncompatibleTeacherError:
        return IncompatibleTeacherError(
            f"{what} needs {needs}, but this is a {type(self.policy).__name__} ({self.description}, kind '{self.name}')."
        )

    def acting_network(self) -> th.nn.Module:
        """
        :return: the part of the policy used to act (what a student replaces)
        """
        return self.policy

    def critic_network(self) -> th.nn.Module:
        """
        :return: the part only used to learn: the critic (empty for DQN, whose Q-network acts, and for ARS)
        """
        return th.nn.ModuleList()

    def q_values(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of preprocessed observations
        :return: Q-values, shape (batch, n_actions)
        """
        raise self._cannot("q_values()", "a DQN or QR-DQN teacher")

    def action_logits(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of preprocessed observations
        :return: unnormalized log-probabilities, shape (batch, n_actions)
        """
        raise self._cannot("action_logits()", "a teacher with a discrete action space")

    def distribution(self, obs: PyTorchObs, temperature: float = 1.0) -> Distribution:
        """
        :param obs: a batch of preprocessed observations
        :param temperature: softmax temperature (discrete actions)
        :return: the action distribution; discrete: categorical ``softmax(logits / T)``
        """
        if not self.is_discrete:
            raise self._cannot("distribution()", "a stochastic teacher (not TD3/DDPG, nor ARS on continuous actions)")
        assert isinstance(self.policy.action_space, spaces.Discrete)
        logits = self.action_logits(obs) / temperature
        return CategoricalDistribution(int(self.policy.action_space.n)).proba_distribution(logits)

    def values(self, obs: PyTorchObs, temperature: float | None = None) -> th.Tensor:
        """
        :param obs: a batch of preprocessed observations
        :param temperature: Q-value kinds: weight Q by softmax(Q/T) instead of taking the max
        :return: state values, shape (batch,)
        """
        raise self._cannot("values()", "a teacher with a critic (not ARS)")

    def action_scores(self, obs: PyTorchObs) -> th.Tensor:
        """
        What the acting network outputs, from which the greedy action follows (exported beside the action).

        :param obs: a batch of preprocessed observations
        :return: Q-values, logits, the Gaussian's mean, or the actor's action in [-1, 1]
        """
        return self.policy._predict(obs, deterministic=True)

    @property
    def score_name(self) -> str:
        """Name of :meth:`action_scores`' output."""
        return "policy_action"

    def actions_from_scores(self, scores: th.Tensor) -> th.Tensor:
        """
        :param scores: what :meth:`action_scores` returned
        :return: the greedy action, in the env's action space (as ``predict(deterministic=True)``)
        """
        if self.is_discrete:
            return scores.argmax(dim=1)
        return env_actions(self.policy, scores)

    def actions(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of preprocessed observations
        :return: the greedy actions in the env's action space
        """
        return self.actions_from_scores(self.action_scores(obs))


class QValueKind(PolicyKind):
    """DQN (and DistillDQN students): the Q-network; its softmax(Q/T) is the policy."""

    name = "q"
    description = "DQN"
    has_q_values = True

    def acting_network(self) -> th.nn.Module:
        return self._net.q_net

    def q_values(self, obs: PyTorchObs) -> th.Tensor:
        return self._net.q_net(obs)

    def action_logits(self, obs: PyTorchObs) -> th.Tensor:
        # Logits of the Boltzmann policy softmax(Q / T).
        return self.q_values(obs)

    def values(self, obs: PyTorchObs, temperature: float | None = None) -> th.Tensor:
        q_values = self.q_values(obs)
        if temperature is None:
            return q_values.max(dim=1).values
        return (th.softmax(q_values / temperature, dim=1) * q_values).sum(dim=1)

    def action_scores(self, obs: PyTorchObs) -> th.Tensor:
        return self.q_values(obs)

    @property
    def score_name(self) -> str:
        return "q_values"


class QuantileKind(QValueKind):
    """QR-DQN: Q-values are the mean over quantiles."""

    name = "quantile"
    description = "QR-DQN"

    def acting_network(self) -> th.nn.Module:
        return self._net.quantile_net

    def q_values(self, obs: PyTorchObs) -> th.Tensor:
        return self._net.quantile_net(obs).mean(dim=1)


class ActorCriticKind(PolicyKind):
    """PPO, A2C, TRPO (and PolicyDistill students): a distribution head and a value head."""

    name = "actor_critic"
    description = "PPO / A2C / TRPO"

    def acting_network(self) -> th.nn.Module:
        policy = self.policy
        assert isinstance(policy, ActorCriticPolicy)
        # Features extractor + policy branch + action head: the value branch is not needed to act.
        return th.nn.ModuleList([policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net])

    def critic_network(self) -> th.nn.Module:
        policy = self.policy
        assert isinstance(policy, ActorCriticPolicy)
        value_part = [policy.mlp_extractor.value_net, policy.value_net]
        if not policy.share_features_extractor:
            value_part.append(policy.vf_features_extractor)
        return th.nn.ModuleList(value_part)

    def action_logits(self, obs: PyTorchObs) -> th.Tensor:
        if not self.is_discrete:
            return super().action_logits(obs)
        return self._net.get_distribution(obs).distribution.logits

    def distribution(self, obs: PyTorchObs, temperature: float = 1.0) -> Distribution:
        if self.is_discrete:
            return super().distribution(obs, temperature)
        return self._net.get_distribution(obs)

    def values(self, obs: PyTorchObs, temperature: float | None = None) -> th.Tensor:
        return self._net.predict_values(obs).flatten()

    def action_scores(self, obs: PyTorchObs) -> th.Tensor:
        # The action head's output: logits, or the Gaussian's mean (the deterministic action before squashing).
        features = self._net.extract_features(obs, self._net.pi_features_extractor)
        return self._net.action_net(self._net.mlp_extractor.forward_actor(features))

    @property
    def score_name(self) -> str:
        return "logits" if self.is_discrete else "mean"

    def actions_from_scores(self, scores: th.Tensor) -> th.Tensor:
        if not self.is_discrete and self.policy.squash_output:
            scores = th.tanh(scores)  # the mode of a tanh-squashed Gaussian, in [-1, 1]
        return super().actions_from_scores(scores)


class GaussianActorKind(PolicyKind):
    """SAC: a tanh-squashed Gaussian actor and twin Q-critics."""

    name = "sac"
    description = "SAC"

    def acting_network(self) -> th.nn.Module:
        return self._net.actor

    def critic_network(self) -> th.nn.Module:
        return self._net.critic

    def distribution(self, obs: PyTorchObs, temperature: float = 1.0) -> Distribution:
        actor = self._net.actor
        mean_actions, log_std, kwargs = actor.get_action_dist_params(obs)
        return actor.action_dist.proba_distribution(mean_actions, log_std, **kwargs)

    def _critic_values(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        return th.cat(self._net.critic(obs, actions), dim=1).min(dim=1).values

    def values(self, obs: PyTorchObs, temperature: float | None = None) -> th.Tensor:
        # The critic at the teacher's own deterministic action (in [-1, 1], as the critic was trained).
        return self._critic_values(obs, self.policy._predict(obs, deterministic=True))


class CrossQKind(GaussianActorKind):
    """CrossQ: SAC's actor, batch-normalized critics."""

    name = "crossq"
    description = "CrossQ"


class TQCKind(GaussianActorKind):
    """TQC: SAC's actor, distributional critics (their value is the mean over critics and quantiles)."""

    name = "tqc"
    description = "TQC"

    def _critic_values(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        return self._net.critic(obs, actions).mean(dim=(1, 2))


class DeterministicActorKind(GaussianActorKind):
    """TD3 and DDPG: a deterministic actor, twin Q-critics; no distribution."""

    name = "td3"
    description = "TD3 / DDPG"

    @property
    def has_distribution(self) -> bool:
        return False

    def distribution(self, obs: PyTorchObs, temperature: float = 1.0) -> Distribution:
        raise self._cannot("distribution()", "a stochastic teacher (not TD3/DDPG)")


class ARSKind(PolicyKind):
    """ARS: one network that acts (logits for discrete actions), no critic."""

    name = "ars"
    description = "ARS"
    has_critic = False

    @property
    def has_distribution(self) -> bool:
        return self.is_discrete

    def action_logits(self, obs: PyTorchObs) -> th.Tensor:
        if not self.is_discrete:
            return super().action_logits(obs)
        return self.action_scores(obs)

    def action_scores(self, obs: PyTorchObs) -> th.Tensor:
        # Logits for discrete actions; for Box, the action (tanh-squashed when the policy squashes).
        return self._net.action_net(self._net.extract_features(obs, self._net.features_extractor))


#: Checked in order: the first class the policy is an instance of decides its kind.
KINDS: tuple[tuple[type[BasePolicy], type[PolicyKind]], ...] = (
    (DQNPolicy, QValueKind),
    (QRDQNPolicy, QuantileKind),
    (ActorCriticPolicy, ActorCriticKind),
    (TQCPolicy, TQCKind),
    (CrossQPolicy, CrossQKind),
    (SACPolicy, GaussianActorKind),
    (TD3Policy, DeterministicActorKind),
    (ARSPolicy, ARSKind),
)


def policy_kind(policy: BasePolicy) -> PolicyKind:
    """
    The kind of a policy, which decides what it can give (Q-values, a distribution, a critic).

    :param policy: an SB3, sb3-contrib or sb3-distill policy
    :return: its :class:`PolicyKind`
    :raises IncompatibleTeacherError: for recurrent and unknown policies
    """
    if isinstance(policy, RecurrentActorCriticPolicy):
        raise IncompatibleTeacherError(
            "Recurrent policies (RecurrentPPO) need a hidden state per env and are not supported here; "
            "use a feed-forward agent (PPO, A2C, DQN, QR-DQN, SAC, TD3, TQC, ...)."
        )
    for policy_class, kind_class in KINDS:
        if isinstance(policy, policy_class):
            return kind_class(policy)
    raise IncompatibleTeacherError(
        f"Unsupported policy {type(policy).__name__}: supported are the policies of DQN, QR-DQN, "
        "PPO, A2C, TRPO, SAC, TD3, DDPG, TQC, CrossQ and ARS (and the students of sb3-distill)."
    )


def count_parameters(module: th.nn.Module) -> int:
    """
    :param module: a torch module
    :return: its number of parameters
    """
    return sum(p.numel() for p in module.parameters())


def acting_network(agent: BaseAlgorithm | BasePolicy) -> th.nn.Module:
    """
    The network an agent acts with: Q-network (DQN, DistillDQN), quantile network (QR-DQN), actor (SAC, TD3, TQC,
    CrossQ), features extractor + policy branch + action head (PPO, A2C, TRPO, PolicyDistill), the policy (ARS).

    :param agent: a model or its policy
    :return: that network (its parameters are what a student replaces)
    """
    return policy_kind(agent.policy if isinstance(agent, BaseAlgorithm) else agent).acting_network()


def count_acting_parameters(agent: BaseAlgorithm | BasePolicy) -> int:
    """
    :param agent: a model or its policy
    :return: the parameters of its :func:`acting_network` (a critic or value head is not counted)
    """
    return count_parameters(acting_network(agent))


def count_critic_parameters(agent: BaseAlgorithm | BasePolicy) -> int:
    """
    :param agent: a model or its policy
    :return: the parameters only used to learn: the value branch and head (PPO, A2C, PolicyDistill students), the
        critics (SAC, TD3, TQC, CrossQ; not their target copies); 0 for DQN and ARS
    """
    return count_parameters(policy_kind(agent.policy if isinstance(agent, BaseAlgorithm) else agent).critic_network())
