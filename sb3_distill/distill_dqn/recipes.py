"""
Named DistillDQN recipes: each is a set of keyword values; explicit keywords override them. The recipe logic lives
here beside its data: :func:`resolve_recipe` (names and old names), :func:`recipe_settings` (a recipe under the
explicit keywords, checked) and :func:`choose_auto_recipe` (what ``"auto"`` becomes); DistillDQN only applies them.

* ``"auto"`` (the default, :data:`AUTO_RECIPE`): ``"policy_distillation"`` for a teacher whose return reaches the env's
  reward threshold (or an env without one), ``"outgrow"`` for a teacher below it, chosen at the first ``learn()``.

* ``"outgrow"``: the student copies the teacher and keeps learning by TD, so that it can outgrow it.
  From the first env step (no teacher phase): DQN's own 3-step TD loss (``n_steps=3``, what lets TD take over in
  distillation's budgets) plus
  α_t · KL(p_T ‖ p_S) with a sharp teacher (T = 0.01, as ``"policy_distillation"``), α_t = max(1 − s, 0)³ with s the
  student's teacher-normalized return over its last 10 training episodes (QDagger's score; the cube because the
  sharp KL's gradient is ~100× the Huber TD term's wherever the two disagree, so α must be near 0 before TD can change
  anything). Measured with DistillDQN's defaults otherwise (``scripts/measure_distill_dqn.py``,
  docs/guide/distill_dqn.md): from the weak CartPole teacher (0.36) 0.89 / 1.0 / 1.0 after 20,000 env steps (seeds
  0 / 1 / 2), where ``"policy_distillation"`` stays a copy; from the strong CartPole teacher at teacher level as fast
  as ``"policy_distillation"``; from the strong Acrobot, MountainCar and LunarLander teachers less steady than it,
  once α_t is near 0 (Acrobot seed 0 fell from 0.93 to 0.0 within 3,000 steps).
* ``"teacher_td_reverse_kl"`` (formerly ``"seed"``, still accepted with a warning): the student bootstraps from the
  teacher's Q-values and matches its softened policy by reverse KL, the loss of the design this project started from:
  L = E[(r + γ max_a' Q_T(s', a') − Q_S(s, a))²] + α·T²·KL(p_S ‖ p_T), with T = 20 and α = 0.9
  (teacher TD target, MSE TD loss, reverse KL with T² scaling, no teacher phase).
* ``"reincarnate"``: the student keeps DQN's own TD loss and can outgrow its teacher. QDagger's phases and
  annealing (below), with two changes that measured better on CartPole-v1: the distillation term regresses on the
  teacher's Q-values (``distill_loss="auto"``: MSE for a teacher with Q-values, whose values give the TD term a
  calibrated start; KL at T = 0.1 for a policy-only teacher), and the offline phase takes 4,000 gradient steps on
  the teacher's 1,000 transitions (gradient steps cost no env steps). Measured (single-threaded, 10-episode
  deterministic evaluations, teacher-normalized) with ``learning_rate=2.3e-3, batch_size=64, train_freq=4,
  gradient_steps=4, target_update_interval=250, learning_starts=1000, exploration_fraction=0.16,
  exploration_final_eps=0.04``: from the strong CartPole teacher, teacher level at 1,500-2,000 env steps (3 seeds;
  ``policy_distillation``: 1,000), with ``net_arch=[32]`` at 2,500 / 1,500 then down to 0.43 (2 seeds); Acrobot
  0.97 at 4,000 (1 seed). From the weak CartPole teacher (0.36) with 1,000 pre-training steps: 0.89-0.90 at
  25-30k env steps on seed 0, but 0.23 at 30k on seed 1.
* ``"qdagger"``: QDagger (Agarwal et al., "Reincarnating Reinforcement Learning", NeurIPS 2022): the student's own
  (n-step) DQN loss plus λ_t · KL(p_T ‖ p_S), with λ_t = max(1 − Ĝ_S / Ĝ_T, 0) on random-normalized returns, after a
  teacher phase: the teacher plays (ε-greedy) into the replay buffer, then the student is pre-trained offline.
  T = 0.1: CleanRL's QDagger uses T = 1 on Atari's clipped rewards, where Q-gaps are large relative to Q; on
  unclipped tasks (CartPole's Q ≈ 100 with gaps < 1) T = 1 gives near-uniform targets and the student does not learn
  (measured: 17-169 on CartPole-v1 after 5,000 steps with T = 1, 500 on 3 seeds of 3 with T = 0.1).
* ``"policy_distillation"``: Policy Distillation (Rusu et al., ICLR 2016): forward KL(p_T ‖ p_S) with a sharp
  teacher (T = 0.01), no TD term: the student imitates, its outputs are action preferences rather than Q-values.
"""

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from sb3_distill.common.distill_coef import parse_distill_coef
from sb3_distill.losses import DISTILL_LOSSES, KL_DIRECTIONS, TD_LOSSES

#: What every recipe shares unless it says otherwise: policy distillation (Rusu et al.: forward KL to a sharp teacher,
#: no TD term, constant α = 1, no teacher phase).
_BASE: dict[str, Any] = dict(
    distill_loss="kl",
    kl_direction="teacher_student",
    temperature=0.01,
    temperature_scaling=False,
    td_target="none",
    td_loss="huber",
    distill_coef=1.0,
    anneal_exponent=1.0,
    anneal_floor=0.0,
    n_steps=1,
    teacher_rollout_steps=0,
    pretrain_gradient_steps=0,
)

#: QDagger's phases and annealing: the student's own TD loss, α_t by QDagger's rule, a teacher phase and pre-training.
_QDAGGER: dict[str, Any] = dict(
    temperature=0.1, td_target="student", distill_coef="qdagger", teacher_rollout_steps=1000, pretrain_gradient_steps=1000
)

#: The seed document's distillation term: reverse KL(p_S ‖ p_T) between policies softened by T = 20, times T².
_SEED_DISTILLATION: dict[str, Any] = dict(kl_direction="student_teacher", temperature=20.0, temperature_scaling=True)

#: Each recipe as its differences from ``_BASE``.
_DIFFERENCES: dict[str, dict[str, Any]] = {
    "outgrow": dict(td_target="student", distill_coef="qdagger", anneal_exponent=3.0, n_steps=3),
    "reincarnate": {**_QDAGGER, "distill_loss": "auto", "pretrain_gradient_steps": 4000},
    "teacher_td_reverse_kl": {**_SEED_DISTILLATION, "td_target": "teacher", "td_loss": "mse", "distill_coef": 0.9},
    "qdagger": _QDAGGER,
    "policy_distillation": {},
}

RECIPES: dict[str, dict[str, Any]] = {name: {**_BASE, **differences} for name, differences in _DIFFERENCES.items()}

#: The default: ``recipe="auto"`` copies a teacher that solves its env and outgrows one that does not. "Solves" is the
#: env's own definition, gymnasium's ``spec.reward_threshold``, against the teacher's measured return; an env without a
#: threshold counts as solved (a copy is the safe choice). Decided at the first ``learn()``, from the teacher's
#: reference returns (measured once, 10 episodes, and reused by ``"outgrow"``'s α rule). No single recipe did both:
#: ``"outgrow"``'s TD term unsettles students of strong Acrobot, MountainCar and LunarLander teachers (on MountainCar even
#: with α = 1: 0.98 → 0.0 within 8,000 env steps), while ``"policy_distillation"`` stays a copy of a weak teacher
#: (docs/guide/distill_dqn.md, "Which default").
AUTO_RECIPE = "auto"
#: What ``"auto"`` becomes: teacher's return ≥ the env's reward threshold (or no threshold) → first, else → second.
AUTO_CHOICES = ("policy_distillation", "outgrow")
DEFAULT_RECIPE = AUTO_RECIPE
#: ``"auto"``'s settings until it has chosen: ``"policy_distillation"``'s, with ``"outgrow"``'s n-step buffer (built
#: with the model; policy distillation does not read rewards, so the buffer suits both choices).
AUTO_SETTINGS: dict[str, Any] = {**RECIPES[AUTO_CHOICES[0]], "n_steps": RECIPES[AUTO_CHOICES[1]]["n_steps"]}

TD_TARGETS: tuple[str, ...] = ("student", "teacher", "none")

#: Old recipe names, still accepted (with a ``FutureWarning``): old name -> new name.
RECIPE_ALIASES: dict[str, str] = {"seed": "teacher_td_reverse_kl"}


#: The keywords a recipe sets (all of them).
RECIPE_KEYWORDS: tuple[str, ...] = tuple(_BASE)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}: use one of {', '.join(repr(a) for a in allowed)}.")
    return value


def recipe_settings(recipe: str, explicit: dict[str, Any]) -> dict[str, Any]:
    """
    A recipe's settings under the explicit keywords (which win), checked and converted.

    :param recipe: a name in :data:`RECIPES`, or :data:`AUTO_RECIPE` (its settings until it has chosen:
        :data:`AUTO_SETTINGS`)
    :param explicit: the keywords given explicitly (not ``None``)
    :return: a value for every name in :data:`RECIPE_KEYWORDS`; raises ``ValueError`` naming the keyword and what it
        accepts
    """
    settings = {**(AUTO_SETTINGS if recipe == AUTO_RECIPE else RECIPES[recipe]), **explicit}
    _choice("distill_loss", settings["distill_loss"], (*DISTILL_LOSSES, "auto"))
    _choice("kl_direction", settings["kl_direction"], KL_DIRECTIONS)
    _choice("td_target", settings["td_target"], TD_TARGETS)
    _choice("td_loss", settings["td_loss"], TD_LOSSES)
    settings["temperature"] = float(settings["temperature"])
    if not settings["temperature"] > 0:
        raise ValueError(f"temperature must be > 0 (got {settings['temperature']}); small T sharpens p = softmax(Q / T).")
    settings["temperature_scaling"] = bool(settings["temperature_scaling"])
    parse_distill_coef(settings["distill_coef"])
    settings["anneal_exponent"] = float(settings["anneal_exponent"])
    if not settings["anneal_exponent"] > 0:
        raise ValueError(f"anneal_exponent must be > 0 (got {settings['anneal_exponent']}); 1 is QDagger's linear rule.")
    settings["anneal_floor"] = float(settings["anneal_floor"])
    if not 0 <= settings["anneal_floor"] <= 1:
        raise ValueError(f"anneal_floor must be in [0, 1] (got {settings['anneal_floor']}); 0 is QDagger's rule.")
    for key in ("teacher_rollout_steps", "pretrain_gradient_steps", "n_steps"):
        settings[key] = int(settings[key])
    if settings["teacher_rollout_steps"] < 0 or settings["pretrain_gradient_steps"] < 0:
        raise ValueError("teacher_rollout_steps and pretrain_gradient_steps must be >= 0.")
    return settings


def choose_auto_recipe(env_id: str | None, teacher_return: Callable[[], float]) -> tuple[str, str]:
    """
    What ``recipe="auto"`` becomes: copy a teacher that solves the env (:data:`AUTO_CHOICES` [0]), outgrow one that
    does not ([1]). Solved = the teacher's return reaches the env's ``spec.reward_threshold``; an env without a
    threshold (or not registered) counts as solved, and the teacher's return is then not needed.

    :param env_id: the student's env id
    :param teacher_return: gives the teacher's mean return (called only when there is a threshold to compare with)
    :return: the recipe chosen, and why (a sentence for ``recipe_choice``)
    """
    threshold = None
    if env_id is not None:
        try:
            threshold = gym.spec(env_id).reward_threshold
        except gym.error.Error:  # an env that is not registered has no threshold
            threshold = None
    if threshold is None:
        reason = f"{env_id or 'the env'} has no reward threshold (gymnasium's spec.reward_threshold) to judge it by"
        return AUTO_CHOICES[0], reason
    measured = teacher_return()
    solved = measured >= threshold
    relation = "reaches" if solved else "is below"
    reason = f"the teacher's return {measured:.1f} {relation} {env_id}'s reward threshold {threshold:g}"
    return AUTO_CHOICES[0] if solved else AUTO_CHOICES[1], reason


def resolve_recipe(name: str) -> str:
    """
    :param name: a recipe name, ``"auto"``, or an old name in :data:`RECIPE_ALIASES`
    :return: the recipe's current name; raises ``ValueError`` (listing the recipes) for an unknown name
    """
    if name in RECIPE_ALIASES:
        new = RECIPE_ALIASES[name]
        warnings.warn(
            f"recipe={name!r} is now called recipe={new!r}; the old name will be removed.", FutureWarning, stacklevel=3
        )
        return new
    if name not in RECIPES and name != AUTO_RECIPE:
        names = ", ".join(repr(r) for r in (AUTO_RECIPE, *RECIPES))
        raise ValueError(f"Unknown recipe {name!r}: use one of {names}.")
    return name
