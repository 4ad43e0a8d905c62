"""
One teacher's part of a policy-distillation loss, for every teacher kind: shared by PolicyDistill and DistillPPO.

A student here is an SB3 actor-critic policy (categorical, diagonal Gaussian, or tanh-squashed Gaussian). For a
batch of *raw* observations a teacher gives :class:`TeacherTargets` (its logits, its Gaussian, its deterministic
actions, its values: whatever the term needs); :func:`policy_term` and :func:`value_term` compare the student with
them using the pure losses of :mod:`sb3_distill.losses`. Splitting the teacher's forward pass from the loss lets an
algorithm compute the targets once and reuse them (DistillPPO does, over its ``n_epochs`` passes on a rollout).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution, TanhBijector

from sb3_distill.common.obs import Obs
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.losses import (
    KL_DIRECTIONS,
    DISTILL_LOSSES,
    KLDirection,
    agreement,
    gaussian_kl_loss,
    gaussian_nll_loss,
    mse_loss,
    nll_loss,
    policy_kl_loss,
)
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.spaces import scale_actions

#: Softmax temperature used when none is given: a policy teacher's own distribution (T = 1); a sharp
#: Boltzmann policy over a Q-value teacher's values (T = 0.01, Rusu et al. 2016).
DEFAULT_TEMPERATURES = {"policy": 1.0, "q_values": 0.01}


@dataclass
class DistillTerm:
    """One teacher's part of the loss: w · (L_policy + distill_value_coef · L_value)."""

    teacher: Teacher
    weight: float
    distill_loss: str
    temperature: float


@dataclass
class TeacherTargets:
    """
    What a teacher says about a batch of states, as far as a term needs it (unused fields stay ``None``).

    :param logits: discrete teachers: logits (or Q-values), shape (batch, n_actions)
    :param mean: stochastic continuous teachers (``"kl"``): the Gaussian's mean, pre-tanh for squashing teachers
    :param log_std: its log standard deviation, same shape
    :param actions: deterministic continuous actions in the env's bounds (``"mse"``, ``"nll"``)
    :param values: V_T(s), shape (batch,)
    """

    logits: th.Tensor | None = None
    mean: th.Tensor | None = None
    log_std: th.Tensor | None = None
    actions: th.Tensor | None = None
    values: th.Tensor | None = None

    def __getitem__(self, indices: th.Tensor | slice) -> "TeacherTargets":
        """
        :param indices: rows to keep
        :return: the targets of these states
        """
        kept = {f.name: getattr(self, f.name) for f in fields(self)}
        return TeacherTargets(**{name: None if value is None else value[indices] for name, value in kept.items()})

    @staticmethod
    def cat(parts: Sequence["TeacherTargets"]) -> "TeacherTargets":
        """
        :param parts: targets of consecutive chunks of a batch
        :return: the targets of the whole batch
        """
        joined = {}
        for f in fields(TeacherTargets):
            values = [getattr(part, f.name) for part in parts]
            joined[f.name] = None if values[0] is None else th.cat(values)
        return TeacherTargets(**joined)


def as_list(value: Any) -> list[Any]:
    """
    :param value: ``None``, one value, or a list / tuple / array of values
    :return: a list (empty for ``None``)
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


def per_teacher(name: str, value: Any, n_teachers: int) -> list[Any]:
    """
    A keyword that is one value for all teachers or a list with one value per teacher.

    :param name: the keyword's name, for the error
    :param value: one value, or one per teacher
    :param n_teachers: number of teachers
    :return: one value per teacher
    """
    values = as_list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * n_teachers
    if len(values) != n_teachers:
        raise ValueError(f"{name} has {len(values)} entries for {n_teachers} teacher(s): give one value, or one per teacher.")
    return values


def check_teacher_weights(weights: Sequence[float] | None, n_teachers: int) -> list[float]:
    """
    :param weights: w_i of L = Σ w_i · L_i, or ``None`` for equal weights 1 / n
    :param n_teachers: number of teachers
    :return: the weights as floats
    """
    if weights is None:
        return [1.0 / n_teachers] * n_teachers
    values = [float(weight) for weight in as_list(weights)]
    if len(values) != n_teachers:
        raise ValueError(
            f"teacher_weights has {len(values)} entries for {n_teachers} teacher(s): give one weight per teacher, "
            "in the order of teacher=[...]."
        )
    if not all(np.isfinite(values)) or any(weight < 0 for weight in values):
        raise ValueError(f"teacher_weights must be finite and >= 0 (got {values}).")
    if sum(values) == 0:
        raise ValueError(f"teacher_weights are all zero ({values}): at least one teacher must have a positive weight.")
    return values


def check_policy_term_arguments(
    n_teachers: int,
    teacher_weights: Sequence[float] | None,
    distill_loss: str | Sequence[str],
    kl_direction: str,
    temperature: float | Sequence[float] | None,
) -> None:
    """
    Check the keywords of the per-teacher policy terms (PolicyDistill, DistillPPO) before anything is loaded.

    :param n_teachers: number of teacher specs given (0: checked once they are known)
    :param teacher_weights: w_i, one per teacher, or ``None``
    :param distill_loss: one loss name, or one per teacher
    :param kl_direction: ``"teacher_student"`` or ``"student_teacher"``
    :param temperature: T > 0 (or ``None`` for the default), or one per teacher
    """
    for loss in as_list(distill_loss):
        if loss not in ("auto", *DISTILL_LOSSES):
            raise ValueError(f"Unknown distill_loss {loss!r}: use 'auto', 'kl', 'mse' or 'nll'.")
    if kl_direction not in KL_DIRECTIONS:
        raise ValueError(f"Unknown kl_direction {kl_direction!r}: use one of {KL_DIRECTIONS}.")
    for value in as_list(temperature):
        if not (value is None or (math.isfinite(float(value)) and float(value) > 0)):
            raise ValueError(f"temperature must be > 0 (got {value}); small T sharpens the teacher's softmax(z / T).")
    if n_teachers:
        check_teacher_weights(teacher_weights, n_teachers)
        per_teacher("distill_loss", distill_loss, n_teachers)
        per_teacher("temperature", temperature, n_teachers)


def build_terms(
    teachers: list[Teacher],
    teacher_weights: Sequence[float] | None,
    distill_loss: str | Sequence[str],
    temperature: float | Sequence[float] | None,
) -> list[DistillTerm]:
    """
    :param teachers: the loaded teachers
    :param teacher_weights: one weight per teacher, or ``None`` (1 / n each)
    :param distill_loss: one loss name for all teachers, or one per teacher (``"auto"`` is resolved later by
        :func:`check_distill_loss`)
    :param temperature: one T for all teachers, one per teacher, or ``None`` (:data:`DEFAULT_TEMPERATURES`)
    :return: one term per teacher
    """
    weights = check_teacher_weights(teacher_weights, len(teachers))
    losses = per_teacher("distill_loss", distill_loss, len(teachers))
    temperatures = per_teacher("temperature", temperature, len(teachers))
    terms = []
    for teacher, weight, loss, term_temperature in zip(teachers, weights, losses, temperatures, strict=True):
        if term_temperature is None:
            term_temperature = DEFAULT_TEMPERATURES["q_values" if teacher.has_q_values else "policy"]
        terms.append(DistillTerm(teacher, weight, loss, float(term_temperature)))
    return terms


def check_distill_loss(teacher: Teacher, loss: str, student_squashes: bool, action_space: spaces.Space) -> str:
    """
    The policy loss for this teacher (``"auto"`` resolved), or a clear error if the teacher cannot give it.

    :param teacher: the teacher
    :param loss: ``"auto"``, ``"kl"``, ``"mse"`` or ``"nll"``
    :param student_squashes: whether the student's Gaussian is tanh-squashed
    :param action_space: the student's action space
    :return: ``"kl"``, ``"mse"`` or ``"nll"``
    """
    same_family = teacher.is_discrete or (teacher.has_distribution and teacher.policy.squash_output == student_squashes)
    if loss == "auto":
        return "kl" if same_family else "mse"
    if loss == "mse" and teacher.is_discrete:
        raise IncompatibleTeacherError(
            f"distill_loss='mse' regresses continuous actions; {teacher!r} is discrete: use 'kl' or 'nll'."
        )
    if loss == "kl" and not teacher.has_distribution:
        raise IncompatibleTeacherError(
            f"distill_loss='kl' needs a stochastic teacher, and {teacher!r} (kind '{teacher.kind}') is deterministic: "
            "use distill_loss='mse' or 'nll' (or 'auto')."
        )
    if loss == "kl" and not same_family:
        squashing = "squashes its actions with tanh" if teacher.policy.squash_output else "does not squash its actions"
        raise IncompatibleTeacherError(
            f"The Gaussian KL compares distributions of the same kind, but {teacher!r} {squashing} and the student "
            f"{'does' if student_squashes else 'does not'}: set squash_output={teacher.policy.squash_output}, or use "
            "distill_loss='mse' or 'nll' for this teacher."
        )
    if loss == "kl" and student_squashes and not teacher.is_discrete:
        assert isinstance(teacher.action_space, spaces.Box) and isinstance(action_space, spaces.Box)
        same_bounds = np.allclose(teacher.action_space.low, action_space.low) and np.allclose(
            teacher.action_space.high, action_space.high
        )
        if not same_bounds:
            raise IncompatibleTeacherError(
                f"The pre-tanh KL assumes the same action bounds, but {teacher!r} squashes into "
                f"[{teacher.action_space.low}, {teacher.action_space.high}] and the env has "
                f"[{action_space.low}, {action_space.high}]: use distill_loss='mse' or 'nll'."
            )
    return loss


@th.no_grad()
def teacher_targets(term: DistillTerm, obs: Obs, policy: bool = True, value: bool = False) -> TeacherTargets:
    """
    One forward pass of the teacher, giving what ``term`` needs.

    :param term: the teacher's term (its ``distill_loss`` already resolved by :func:`check_distill_loss`)
    :param obs: a batch of raw observations
    :param policy: whether the policy term will be computed
    :param value: whether the value term will be computed
    :return: the targets
    """
    teacher, targets = term.teacher, TeacherTargets()
    if policy:
        if teacher.is_discrete:
            targets.logits = teacher.action_logits(obs)
        elif term.distill_loss == "kl":
            # Pre-tanh for squashing teachers, like the student.
            gaussian: th.distributions.Normal = teacher.distribution(obs).distribution  # type: ignore[assignment]
            targets.mean, targets.log_std = gaussian.loc, gaussian.scale.log()
        else:
            targets.actions = teacher.actions(obs)  # in the env's bounds
    if value:
        targets.values = teacher.values(obs, temperature=term.temperature if teacher.has_q_values else None)
    return targets


def policy_term(
    term: DistillTerm,
    student: Distribution,
    targets: TeacherTargets,
    direction: KLDirection,
    student_squashes: bool,
    action_space: spaces.Space,
) -> tuple[th.Tensor, th.Tensor | None]:
    """
    One teacher's policy loss on a batch.

    :param term: the teacher's term
    :param student: the student's action distribution on the batch (an SB3 ``Distribution``)
    :param targets: the teacher's :func:`teacher_targets` on the same states
    :param direction: KL direction
    :param student_squashes: whether the student's Gaussian is tanh-squashed
    :param action_space: the student's action space
    :return: the loss and, for discrete teachers, the share of states where both argmax agree
    """
    if term.teacher.is_discrete:
        assert targets.logits is not None
        student_logits = student.distribution.logits  # type: ignore[union-attr]
        if term.distill_loss == "nll":
            loss = nll_loss(student_logits, targets.logits)
        else:
            loss = policy_kl_loss(student_logits, targets.logits, term.temperature, direction)
        return loss, agreement(student_logits, targets.logits)
    # Continuous: the student's Gaussian (pre-tanh when it squashes).
    assert isinstance(action_space, spaces.Box)
    mean, log_std = student.distribution.loc, student.distribution.scale.log()  # type: ignore[union-attr]
    if term.distill_loss == "kl":
        assert targets.mean is not None and targets.log_std is not None
        return gaussian_kl_loss(mean, log_std, targets.mean, targets.log_std, direction), None
    assert targets.actions is not None
    if term.distill_loss == "nll":
        # The likelihood is taken where the student's Gaussian lives: pre-tanh for a squashing student.
        goal = TanhBijector.inverse(scale_actions(action_space, targets.actions)) if student_squashes else targets.actions
        return gaussian_nll_loss(mean, log_std, goal), None
    student_actions = th.tanh(mean) if student_squashes else scale_actions(action_space, mean)
    return mse_loss(student_actions, scale_actions(action_space, targets.actions)), None


def value_term(student_values: th.Tensor, targets: TeacherTargets) -> th.Tensor:
    """
    :param student_values: V_S(s), shape (batch,)
    :param targets: the teacher's targets with ``values``
    :return: (V_T(s) - V_S(s))², mean over the batch
    """
    assert targets.values is not None
    return mse_loss(student_values, targets.values)


__all__ = [
    "DEFAULT_TEMPERATURES",
    "DistillTerm",
    "TeacherTargets",
    "as_list",
    "build_terms",
    "check_distill_loss",
    "check_teacher_weights",
    "per_teacher",
    "policy_term",
    "teacher_targets",
    "value_term",
]
