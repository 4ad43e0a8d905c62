"""
The actor-critic student shared by PolicyDistill and DistillPPO: its policies and its per-teacher terms.

Policies: ``MlpPolicy``, ``CnnPolicy`` and ``MultiInputPolicy`` are SB3's own actor-critic classes (as in PPO), so
that PPO and A2C can fine-tune a student. For a teacher whose actions are tanh-squashed Gaussians (SAC, TQC, CrossQ;
TD3/DDPG actors squash too) the student gets the same squashing: the ``Squashed*`` variants below, whose action
distribution is SB3's ``SquashedDiagGaussianDistribution`` (what SAC uses) instead of an unbounded
``DiagGaussianDistribution``. SB3's ``ActorCriticPolicy`` only squashes with gSDE; these classes squash without it.
PPO and A2C handle squashed policies (they rescale the actions and estimate the entropy from log-probabilities), so
a squashed student can be fine-tuned as well.

Terms: :class:`ActorCriticStudentMixin` adds to the teacher seam (:class:`~sb3_distill.common.teacher_mixin.TeacherMixin`)
the keywords of the per-teacher :class:`~sb3_distill.common.policy_terms.DistillTerm` (``teacher_weights``,
``distill_loss``, ``kl_direction``, ``temperature``, ``squash_output``), checked before anything is loaded, and their
set-up once the teachers are known: one term per teacher, a tanh-squashed student for squashing teachers, each
teacher's ``"auto"`` loss resolved.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule

from sb3_distill.common.policy_terms import (
    DistillTerm,
    as_list,
    build_terms,
    check_distill_loss,
    check_policy_term_arguments,
)
from sb3_distill.common.teacher_mixin import TeacherMixin
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import TeacherSpec

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


class ActorCriticStudentMixin(TeacherMixin):
    """
    The per-teacher policy terms of an actor-critic student; put it first in the bases, like ``TeacherMixin``.

    The algorithm calls :meth:`_init_terms` in ``__init__`` (before SB3's ``__init__``) and :meth:`_setup_terms`
    at the start of ``_setup_model`` (instead of ``_setup_teachers``), and keeps a ``distill_value_coef`` attribute
    (the weight of value distillation: > 0 needs teachers with a critic).
    """

    renamed_keywords: ClassVar[dict[str, str]] = {"policy_loss": "distill_loss"}
    distill_value_coef: float
    policy_class: Any  # SB3's BaseAlgorithm

    def _init_terms(
        self,
        teacher: TeacherSpec | Sequence[TeacherSpec] | None,
        teacher_weights: Sequence[float] | None,
        distill_loss: str | Sequence[str],
        kl_direction: str,
        temperature: float | Sequence[float] | None,
        squash_output: bool | None,
        init_setup_model: bool,
    ) -> None:
        """
        Check and store the keywords of the terms (nothing is loaded yet).

        :param teacher: the teacher spec(s)
        :param teacher_weights: w_i, one per teacher, or ``None``
        :param distill_loss: one loss name, or one per teacher
        :param kl_direction: ``"teacher_student"`` or ``"student_teacher"``
        :param temperature: T > 0 (or ``None`` for the default), or one per teacher
        :param squash_output: tanh-squash the student's continuous actions (``None``: when a teacher squashes)
        :param init_setup_model: SB3's ``_init_setup_model``
        """
        self._init_teacher(teacher, init_setup_model)
        check_policy_term_arguments(len(as_list(teacher)), teacher_weights, distill_loss, kl_direction, temperature)
        self.teacher_weights = teacher_weights
        self.distill_loss = distill_loss
        self.kl_direction = kl_direction
        self.temperature = temperature
        self.squash_output = squash_output
        self._terms: list[DistillTerm] = []

    def _setup_terms(self) -> None:
        """Resolve the teachers, then one term per teacher; choose the (squashed) student policy class."""
        self._setup_teachers()
        if self.teachers:  # none after load(path) without an env: the student predicts, and has no terms
            self._terms = build_terms(self.teachers, self.teacher_weights, self.distill_loss, self.temperature)
        if isinstance(self.action_space, spaces.Box):
            if self.squash_output is None:
                self.squash_output = any(teacher.policy.squash_output for teacher in self.teachers)
            self.policy_class = with_squashing(self.policy_class, bool(self.squash_output))
        elif self.squash_output:
            raise ValueError(f"squash_output=True is for continuous actions; the action space is {self.action_space}.")
        for term in self._terms:
            term.distill_loss = self._check_distill_loss(term.teacher, term.distill_loss)

    def _check_distill_loss(self, teacher: Teacher, loss: str) -> str:
        """The loss for this teacher ('auto' resolved), or a clear error if it cannot be computed."""
        return check_distill_loss(teacher, loss, is_squashed(self.policy_class), self.action_space)

    def _check_teacher(self, teacher: Teacher) -> None:
        super()._check_teacher(teacher)
        if self.distill_value_coef > 0 and not teacher.has_critic:
            raise IncompatibleTeacherError(
                f"Value distillation (distill_value_coef={self.distill_value_coef}) needs a teacher with a critic, and "
                f"{teacher!r} (kind '{teacher.kind}') has none: set distill_value_coef=0, or use a teacher with a critic."
            )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_terms"]


__all__ = [
    "ActorCriticStudentMixin",
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "SquashedActorCriticCnnPolicy",
    "SquashedActorCriticPolicy",
    "SquashedMultiInputActorCriticPolicy",
    "is_squashed",
    "with_squashing",
]
