"""
The weight of the distillation term (``distill_coef``) of DistillDQN (α_t) and DistillPPO (λ_t), and QDagger's
performance rule, once for both.

``distill_coef`` takes the same forms in both algorithms:

* a float >= 0: a constant weight;
* an SB3 schedule (a callable of the remaining progress, 1 → 0) or ``"lin_<λ_0>"`` (λ_0 · progress remaining,
  rl-zoo3's spelling of a linear schedule, which YAML and Optuna trials can hold);
* ``"qdagger"`` or ``"qdagger_<λ_0>"``: QDagger's performance rule (Agarwal et al., "Reincarnating Reinforcement
  Learning", NeurIPS 2022), :func:`qdagger_coef`: the weight fades from λ_0 (default 1) to 0 as the student's
  teacher-normalized return s = (G_S − G_random) / (G_T − G_random) goes from 0 to 1, and comes back if the
  student falls back.

QDagger's rule, clipped: λ = λ_0 · max(clip(1 − s, 0, 1)^p, α_min) (p = ``anneal_exponent``, α_min =
``anneal_floor``; 1 and 0 in QDagger). The paper describes λ_t as a weight that decays from its full value to 0 as
the student catches up; CleanRL's QDagger computes ``max(1 − G_S / G_T, 0)`` on raw returns, so its weight never
passes 1 unless the student's return is negative. Normalizing by a random policy's return (as here, so that
MountainCar's or Acrobot's negative returns work) would otherwise give more than λ_0 to a student that does worse
than random (1.25 · λ_0 for s = −0.25), a weight nobody configured; the clip keeps λ_0 the largest weight. A teacher
no better than a random policy (G_T ≤ G_random: no score can be computed) gets the smallest weight, λ_0 · α_min, once
the student has played an episode: measured in a shifted student env (the teacher's returns are measured there,
:mod:`sb3_distill.common.reference_env`), such a teacher is wrong there, and a full pull towards it would pin the
student to it (CartPole with the push force × 0.25: the bundled teacher 19.7, a random policy 32.7).

``"auto"`` (DistillPPO's default) is QDagger's rule with λ_0 chosen for you from the teacher, as ``"auto"`` means
everywhere in the package: at each ``learn()`` the teacher's measured return is compared with the env's definition of
solved (gymnasium's ``spec.reward_threshold``). A teacher that reaches it (or an env without one) gets λ_0 = 1 from the
first update. A weaker one gets λ_0 = 0.1 (:data:`AUTO_COEF_CHOICES`), and only once the student stalls: its score has
set no new best :data:`STALL_PATIENCE` (4) times in a row (:class:`StallGate`); a student that improves on its own learns
alone, so it is never held below its algorithm from scratch, and a student that is stuck (PPO on Acrobot-v1 at −500)
gets the teacher's pull. Measured in docs/guide/distill_ppo.md "Which default" (issue 20): on a weak CartPole teacher
(112) that PPO passes after one update, every pull tried from the first update (λ_0 = 0.1, a per-state advantage
filter, a PPO-style trust-region clip of the teacher term, one update of delay, scoring the student by greedy episodes)
was 100–220 below PPO from scratch in PPO's first three updates (5 seeds); the gate is at PPO's level there. What it
chose and why is ``distill_coef_choice``. ``"auto_<λ_0>"``, DistillPPO's old name of the rule with a given λ_0, still
works as ``"qdagger_<λ_0>"`` (no gate), with a ``FutureWarning`` (:data:`RENAMED_VALUES`).
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

DistillCoef = float | str | Callable[[float], float]

#: The name of QDagger's performance rule in ``distill_coef`` (``"qdagger_<λ_0>"`` scales it).
QDAGGER = "qdagger"
#: QDagger's rule with λ_0 chosen from the teacher at each ``learn()`` (:meth:`DistillCoefMixin._choose_auto_coef`).
AUTO = "auto"
#: λ_0 of ``distill_coef="auto"``: for a teacher whose measured return reaches its env's reward threshold (or an env
#: without one), and for a weaker one (pulled towards only once the student stalls, :class:`StallGate`). Measured
#: (issue 20, SB3's PPO defaults, CartPole-v1, 20-episode deterministic evaluations every 10k steps;
#: docs/guide/distill_ppo.md "Which default"): with λ_0 = 1 a weak teacher (an SB3 DQN stopped at 6k steps, 112) holds
#: the student near itself for 50k steps (153 / 179 at 50k, seeds 0 / 1, where PPO from scratch is at 500 from 30k on),
#: even after λ_t has faded to 0; with λ_0 = 0.1 it keeps PPO's pace from 20k on, and the stall gate keeps it from the
#: first update.
AUTO_COEF_CHOICES = (1.0, 0.1)
#: The student's latest training episodes whose mean return is its score.
SCORE_EPISODES = 10
#: Scores in a row without a new best that make a student stall (:class:`StallGate`), so a stall comes at the 5th update
#: at the earliest. Measured (issue 20; docs/guide/distill_ppo.md "Which default"): PPO from scratch (SB3's defaults) on
#: Acrobot-v1, where every early episode ends at −500, leaves −500 in its training episodes at its 2nd / 3rd / 4th / 5th
#: rollout on 1 / 4 / 2 / 1 of seeds 0–9 and never within 10 rollouts on 2 (whose greedy policy is at −500 at 20k);
#: with 4 only those two stall, with 2 (the value before) five did, three of them one or two rollouts before leaving
#: −500 on their own, and one pulled update left one of those (seed 2) 167–422 below PPO from scratch on a teacher
#: trained apart. With 1, PPO on CartPole-v1 stalls by chance after its second rollout on one seed of five, where its
#: greedy policy was already at 500, and a pull then costs it 200.
STALL_PATIENCE = 4
#: Old spellings of ``distill_coef`` values, old -> new (``"auto_0.5"`` -> ``"qdagger_0.5"``; plain ``"auto"`` is not
#: renamed: it is the rule with a chosen λ_0), accepted with a ``FutureWarning`` by ``__init__``, ``load()``, saved zips,
#: rl-zoo3 YAML and Optuna trials.
RENAMED_VALUES: dict[str, dict[str, str]] = {"distill_coef": {f"{AUTO}_": f"{QDAGGER}_"}}

_FIX = (
    "use a float >= 0, an SB3 schedule (a callable of the remaining progress, e.g. LinearSchedule(1.0, 0.0, 1.0)), "
    "'lin_<λ0>', 'qdagger', 'qdagger_<λ0>' or 'auto' (QDagger's rule, λ0 chosen from the teacher)"
)


class LinearCoef:
    """λ_t = λ_0 · progress_remaining (a class rather than a lambda, so that it pickles with the model)."""

    def __init__(self, initial: float) -> None:
        """
        :param initial: λ_0
        """
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        """
        :param progress_remaining: SB3's remaining progress, 1 → 0
        :return: λ_0 · progress_remaining
        """
        return self.initial * progress_remaining


def parse_distill_coef(distill_coef: DistillCoef) -> tuple[str, float | Callable[[float], float]]:
    """
    Check ``distill_coef`` and say how the weight is computed.

    :param distill_coef: a float >= 0; an SB3 schedule (giving values >= 0); ``"lin_<λ_0>"``; ``"qdagger"`` or
        ``"qdagger_<λ_0>"``; ``"auto"`` (QDagger's rule; λ_0 = 1 until ``learn()`` chooses it from the teacher)
    :return: ``("constant", λ)``, ``("schedule", schedule)`` or ``("qdagger", λ_0)``; raises ``ValueError`` or
        ``TypeError`` naming the accepted forms
    """
    if distill_coef == AUTO:
        return QDAGGER, AUTO_COEF_CHOICES[0]
    if isinstance(distill_coef, str):
        name, _, value = distill_coef.partition("_")
        if name in (QDAGGER, "lin") and (value or name == QDAGGER):
            try:
                coef = float(value) if value else 1.0
            except ValueError:
                coef = math.nan
            if math.isfinite(coef) and coef >= 0:
                return (QDAGGER, coef) if name == QDAGGER else ("schedule", LinearCoef(coef))
        raise ValueError(f"Unknown distill_coef {distill_coef!r}: {_FIX}.")
    if callable(distill_coef):
        for progress in (1.0, 0.0):
            coef_at = float(distill_coef(progress))
            if not (math.isfinite(coef_at) and coef_at >= 0):
                raise ValueError(
                    f"The distill_coef schedule gives {coef_at} at progress_remaining={progress}: it must be finite and >= 0."
                )
        return "schedule", distill_coef
    if isinstance(distill_coef, bool) or not isinstance(distill_coef, (int, float, np.floating, np.integer)):
        raise TypeError(f"distill_coef={distill_coef!r} is neither a number nor callable: {_FIX}.")
    if not (math.isfinite(distill_coef) and distill_coef >= 0):
        raise ValueError(f"distill_coef must be finite and >= 0 (got {distill_coef}): {_FIX}.")
    return "constant", float(distill_coef)


def student_score(recent_returns: Sequence[float], random_return: float, teacher_return: float) -> float | None:
    """
    QDagger's score of the student: its mean return, normalized by the teacher's, not clipped.

    :param recent_returns: the student's latest episode returns
    :param random_return: G_random, a uniformly random policy's mean return
    :param teacher_return: G_T, the teacher's mean return
    :return: s = (mean(recent_returns) − G_random) / (G_T − G_random) (1: the teacher's level), or ``None`` when
        there is nothing to score (no episode, or a teacher no better than random)
    """
    if len(recent_returns) == 0 or teacher_return <= random_return:
        return None
    return (float(np.mean(recent_returns)) - random_return) / (teacher_return - random_return)


def qdagger_coef(score: float | None, initial: float = 1.0, exponent: float = 1.0, floor: float = 0.0) -> float:
    """
    QDagger's performance rule: λ = λ_0 · max(clip(1 − s, 0, 1)^p, α_min) (see the module's docstring for the clip).

    :param score: the student's score s (:func:`student_score`); ``None`` (nothing to score yet): λ_0
    :param initial: λ_0, the largest weight
    :param exponent: p > 0 (1: QDagger's linear rule)
    :param floor: α_min in [0, 1] (0: QDagger's)
    :return: λ, 0 once the student plays as well as its teacher (unless ``floor`` > 0)
    """
    if score is None:
        return initial
    return initial * max(min(max(1.0 - score, 0.0), 1.0) ** exponent, floor)


class StallGate:
    """
    Whether a student stalls, for ``distill_coef="auto"`` with a weak teacher: its score (:func:`student_score`, over
    its latest training episodes) has set no new best in its last :data:`STALL_PATIENCE` scores. A student that
    improves on its own is not pulled at all; the first score only sets the bar (so the first updates are the RL
    algorithm's alone). A score counts once: asked again before a new episode has ended (the same ``latest``), the
    gate gives the same answer; a student whose every episode is the same failure (PPO on Acrobot-v1 at −500) scores
    the same and stalls.
    """

    def __init__(self, patience: int = STALL_PATIENCE) -> None:
        """
        :param patience: how many scores in a row without a new best make a stall (>= 1)
        """
        if patience < 1:
            raise ValueError(f"patience must be >= 1 (got {patience}).")
        self.patience = patience
        #: the student's best score so far (``None`` before its first)
        self.best: float | None = None
        #: what identified the last score counted (the student's latest episode)
        self.latest: Any = None
        #: scores in a row without a new best
        self.without_progress = 0

    def stalls(self, score: float | None, latest: Any) -> bool:
        """
        :param score: the student's current score s (``None``: nothing to score yet)
        :param latest: what identifies the episodes behind ``score`` (the latest one's info dict): the same object as
            at the last call means no new score
        :return: True when the student's last ``patience`` scores set no new best
        """
        if score is not None and latest is not self.latest:
            if self.best is not None and score <= self.best:
                self.without_progress += 1
            else:
                self.without_progress = 0
            self.best = score if self.best is None else max(self.best, score)
            self.latest = latest
        return self.without_progress >= self.patience

    def __getstate__(self) -> dict[str, Any]:
        # Saved with the model without the episode it last counted: after a load every score is new.
        return {**self.__dict__, "latest": None}


class DistillCoefMixin:
    """
    ``distill_coef`` for an algorithm with an RL term beside the distillation term (DistillDQN, DistillPPO).

    The algorithm calls :meth:`_parse_distill_coef` when ``distill_coef`` is set (``__init__``, and ``_setup_model``
    for ``load(path, distill_coef=...)``); :meth:`current_distill_coef` gives the weight of the next update. An
    algorithm whose first episodes are not the student's own (DistillDQN's teacher phase) overrides
    :meth:`_student_returns`. Reference returns come from
    :meth:`~sb3_distill.common.teacher_mixin.TeacherMixin.teacher_reference_returns`.
    """

    #: p of QDagger's rule (DistillDQN sets its own ``anneal_exponent``)
    anneal_exponent: float = 1.0
    #: α_min of QDagger's rule (DistillDQN sets its own ``anneal_floor``)
    anneal_floor: float = 0.0
    #: Old spellings of values, for :mod:`sb3_distill.common.renamed`.
    renamed_values: ClassVar[dict[str, dict[str, str]]] = RENAMED_VALUES
    #: What ``distill_coef="auto"`` chose as λ_0 and why (a sentence), once ``learn()`` has started; else ``None``
    distill_coef_choice: str | None = None
    #: Whether ``distill_coef="auto"`` chose to pull only when the student stalls (:class:`StallGate`): for a teacher
    #: below its env's reward threshold
    _auto_waits_for_a_stall: bool = False
    distill_coef: DistillCoef
    ep_info_buffer: Any
    teachers: list[Any]
    verbose: int
    _current_progress_remaining: float

    def _parse_distill_coef(self) -> None:
        self._coef_mode, self._coef_value = parse_distill_coef(self.distill_coef)

    def _excluded_save_params(self) -> list[str]:
        # Parsed from distill_coef again on load (which may change it); the choice is made again at each learn()
        # Chosen again at each learn(); the stall gate's memory is saved, so that a resumed run goes on counting
        excluded = ["_coef_mode", "_coef_value", "distill_coef_choice", "_auto_waits_for_a_stall"]
        return [*super()._excluded_save_params(), *excluded]  # type: ignore[misc]

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        self._choose_auto_coef()
        if self.verbose >= 1 and self.distill_coef_choice is not None and self.distill_coef == AUTO:
            print(self.distill_coef_choice)
        return super()._setup_learn(*args, **kwargs)  # type: ignore[misc]

    def _choose_auto_coef(self) -> None:
        """
        ``distill_coef="auto"``: λ_0 of QDagger's rule from the teacher's measured strength (:data:`AUTO_COEF_CHOICES`):
        a teacher whose reference return reaches the env's reward threshold (or an env without one) gets the first from
        the first update, a weaker one the second once the student stalls (:class:`StallGate`). Sets
        ``distill_coef_choice`` (printed at ``verbose >= 1``).
        """
        if self.distill_coef != AUTO or not self.teachers:
            return
        teacher_return = self.teacher_reference_returns()[1]  # type: ignore[attr-defined]
        threshold = self._env_reward_threshold()  # type: ignore[attr-defined]
        env_name = self._env_id() or "the env"  # type: ignore[attr-defined]
        solved = True
        if threshold is None:
            coef = AUTO_COEF_CHOICES[0]
            reason = f"{env_name} has no reward threshold (gymnasium's spec.reward_threshold) to judge the teacher by"
        else:
            solved = teacher_return >= threshold
            coef = AUTO_COEF_CHOICES[0] if solved else AUTO_COEF_CHOICES[1]
            relation = "reaches" if solved else "is below"
            reason = f"the teacher's return {teacher_return:.1f} {relation} {env_name}'s reward threshold {threshold:g}"
            measurement = getattr(self, "reference_measurement", None)
            if measurement is not None and measurement.where == "student_env":  # else: the env id's, as always
                reason += f", {measurement.note}"
        self._coef_value = coef
        self._auto_waits_for_a_stall = not solved
        when = (
            "from the first update"
            if solved
            else f"only once the student's score has set no new best {STALL_PATIENCE} times in a row (a student that "
            "improves on its own learns alone)"
        )
        self.distill_coef_choice = (
            f"distill_coef='{AUTO}' chose QDagger's rule with λ_0 = {coef:g}, pulling {when}: {reason} "
            f"(pass distill_coef='{QDAGGER}_<λ0>' to choose yourself)."
        )

    def current_distill_coef(self) -> float:
        """
        :return: the weight of the distillation term at the current progress: constant, scheduled, or QDagger's rule
            on the student's latest training episodes
        """
        if self._coef_mode == "constant":
            return float(self._coef_value)  # type: ignore[arg-type]
        if self._coef_mode == "schedule":
            return float(self._coef_value(self._current_progress_remaining))  # type: ignore[operator]
        score = self.student_score()
        if self.distill_coef == AUTO and self._auto_waits_for_a_stall:
            latest = self.ep_info_buffer[-1] if self.ep_info_buffer else None
            if not self._stall_gate().stalls(score, latest):
                return 0.0
        return qdagger_coef(score, float(self._coef_value), self.anneal_exponent, self.anneal_floor)  # type: ignore[arg-type]

    def _stall_gate(self) -> "StallGate":
        """The :class:`StallGate` of ``distill_coef="auto"`` (one per model, from its first score on; saved with it)."""
        gate = getattr(self, "_auto_stall_gate", None)
        if gate is None:
            gate = self._auto_stall_gate = StallGate()
        return gate

    def _student_returns(self) -> list[float]:
        """The returns of the student's own latest training episodes (at most :data:`SCORE_EPISODES`)."""
        return [info["r"] for info in list(self.ep_info_buffer or [])[-SCORE_EPISODES:]]

    def student_score(self) -> float | None:
        """
        QDagger's score of the student (:func:`student_score`) over its latest :data:`SCORE_EPISODES` training
        episodes, against :meth:`teacher_reference_returns`.

        :return: s (1: the teacher's level; not clipped), or ``None`` while there is nothing to score; ``inf`` for a
            teacher no better than a random policy (in the env where its returns were measured: the student's own when
            it is shifted), which has nothing to teach by QDagger's measure: the smallest weight, not the full one
        """
        recent = self._student_returns()
        if not recent:
            return None
        random_return, teacher_return = self.teacher_reference_returns()  # type: ignore[attr-defined]
        if teacher_return <= random_return:
            return math.inf
        return student_score(recent, random_return, teacher_return)


__all__ = [
    "AUTO",
    "AUTO_COEF_CHOICES",
    "QDAGGER",
    "RENAMED_VALUES",
    "SCORE_EPISODES",
    "STALL_PATIENCE",
    "DistillCoefMixin",
    "LinearCoef",
    "StallGate",
    "parse_distill_coef",
    "qdagger_coef",
    "student_score",
]
