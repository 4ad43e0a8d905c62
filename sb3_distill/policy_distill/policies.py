"""
Student policies of PolicyDistill: SB3's actor-critic policies, so that PPO and A2C can fine-tune them.

``MlpPolicy``, ``CnnPolicy`` and ``MultiInputPolicy`` are SB3's own classes (as in PPO). For a teacher whose actions
are tanh-squashed Gaussians (SAC, TQC, CrossQ; TD3/DDPG actors squash too) the student gets the same squashing: the
``Squashed*`` variants below, whose action distribution is SB3's ``SquashedDiagGaussianDistribution`` (what SAC uses)
instead of an unbounded ``DiagGaussianDistribution``. SB3's ``ActorCriticPolicy`` only squashes with gSDE; these
classes squash without it. PPO and A2C handle squashed policies (they rescale the actions and estimate the entropy
from log-probabilities), so a squashed student can be fine-tuned as well.
"""

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule

MlpPolicy = ActorCriticPolicy
CnnPolicy = ActorCriticCnnPolicy
MultiInputPolicy = MultiInputActorCriticPolicy


class _TanhSquashing(ActorCriticPolicy):
    """Replaces the unbounded Gaussian of an actor-critic policy by a tanh-squashed one (SAC's), without gSDE."""

    def _build(self, lr_schedule: Schedule) -> None:
        if not isinstance(self.action_space, spaces.Box):
            raise ValueError(f"{type(self).__name__} squashes continuous actions; the action space is {self.action_space}.")
        if self.use_sde:
            raise ValueError(f"{type(self).__name__} does not support gSDE: use use_sde=False.")
        self.action_dist = SquashedDiagGaussianDistribution(get_action_dim(self.action_space))
        # predict() and PPO's rollouts map actions in [-1, 1] to the env's bounds when squash_output is set.
        self._squash_output = True
        super()._build(lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["squash_output"] = False  # the squashing comes with the class, not from gSDE's keyword
        return data


class SquashedActorCriticPolicy(_TanhSquashing, ActorCriticPolicy):
    """``MlpPolicy`` with tanh-squashed Gaussian actions (in the action space's bounds)."""


class SquashedActorCriticCnnPolicy(_TanhSquashing, ActorCriticCnnPolicy):
    """``CnnPolicy`` with tanh-squashed Gaussian actions (in the action space's bounds)."""


class SquashedMultiInputActorCriticPolicy(_TanhSquashing, MultiInputActorCriticPolicy):
    """``MultiInputPolicy`` with tanh-squashed Gaussian actions (in the action space's bounds)."""


_SQUASHED: dict[type[ActorCriticPolicy], type[ActorCriticPolicy]] = {
    ActorCriticPolicy: SquashedActorCriticPolicy,
    ActorCriticCnnPolicy: SquashedActorCriticCnnPolicy,
    MultiInputActorCriticPolicy: SquashedMultiInputActorCriticPolicy,
}


def is_squashed(policy_class: type[ActorCriticPolicy]) -> bool:
    """
    :param policy_class: a student policy class
    :return: whether its continuous actions are tanh-squashed
    """
    return issubclass(policy_class, _TanhSquashing)


def with_squashing(policy_class: type[ActorCriticPolicy], squash: bool) -> type[ActorCriticPolicy]:
    """
    The squashed (or plain) variant of a student policy class.

    :param policy_class: ``ActorCriticPolicy``, ``ActorCriticCnnPolicy``, ``MultiInputActorCriticPolicy`` or a variant
    :param squash: whether the actions must be tanh-squashed
    :return: the class to build
    """
    if is_squashed(policy_class) == squash:
        return policy_class
    if squash:
        if policy_class not in _SQUASHED:
            raise ValueError(
                f"The student policy {policy_class.__name__} has no tanh-squashed variant, which this teacher needs "
                "for distill_loss='kl'. Use 'MlpPolicy', 'CnnPolicy' or 'MultiInputPolicy', or squash_output=False "
                "with distill_loss='mse' or 'nll'."
            )
        return _SQUASHED[policy_class]
    return next(plain for plain, squashed in _SQUASHED.items() if squashed is policy_class)


__all__ = [
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "SquashedActorCriticCnnPolicy",
    "SquashedActorCriticPolicy",
    "SquashedMultiInputActorCriticPolicy",
    "is_squashed",
    "with_squashing",
]
