"""
Optuna samplers and converters of DistillDQN, PolicyDistill and DistillPPO, with rl-zoo3's signatures.

A sampler proposes a trial's hyperparameters and returns the algorithm's keyword arguments; its converter rebuilds
those keyword arguments from ``trial.params`` alone, which is what ``--trial-id N`` and rl-zoo3's ``load_trial`` use.
So every sampler ends with ``return convert_...(params)`` and the tests check ``convert(trial.params) == sampled``.

Samplers only propose what every teacher of the study can give (a policy-only teacher has no Q-values):
:func:`tuning_with` tells them, for the duration of a study, what the study's teachers offer.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna

from sb3_distill.common.distill_coef import AUTO, QDAGGER
from sb3_distill.common.renamed import rename_keywords, rename_value
from sb3_distill.distill_dqn.recipes import RECIPES
from sb3_distill.losses import KL_DIRECTIONS
from sb3_distill.teachers import Teacher

#: Widths of the student's hidden layers (the point of distillation is a smaller network).
NET_WIDTHS: tuple[int, ...] = (16, 32, 64, 128, 256)
#: Lengths of DistillDQN's teacher phase (env steps played by the teacher, then as many pre-training updates).
TEACHER_PHASES: tuple[int, ...] = (0, 1000, 5000)
#: Range of DistillDQN's distillation coefficient α (log-uniform).
DISTILL_COEF_RANGE: tuple[float, float] = (0.01, 10.0)
#: How DistillPPO's λ_t evolves (``distill_coef_rule``): QDagger's performance rule, linear decay to 0, or constant.
DISTILL_PPO_COEF_RULES: tuple[str, ...] = (QDAGGER, "linear", "constant")
#: Range of DistillPPO's λ_0 (log-uniform).
DISTILL_PPO_COEF_RANGE: tuple[float, float] = (0.03, 10.0)
#: Trial parameters renamed since a release (trials of older studies keep them): old name -> new name.
RENAMED_TRIAL_PARAMS: dict[str, str] = {"distill_coef_mode": "distill_coef_rule"}
#: Old values of the trial's rule: the studies of before the rename sampled ``"auto"`` for QDagger's rule.
RENAMED_TRIAL_RULES: dict[str, str] = {AUTO: QDAGGER}


@dataclass(frozen=True)
class Capabilities:
    """
    What every teacher of the study offers, so that samplers only propose losses they can compute.

    :param q_values: every teacher has Q-values (DQN, QR-DQN)
    :param discrete: every teacher acts in a discrete action space
    :param distribution: every teacher has an action distribution
    :param critic: every teacher has a value function
    """

    q_values: bool = True
    discrete: bool = True
    distribution: bool = True
    critic: bool = True

    @classmethod
    def of(cls, teachers: Sequence[Teacher]) -> "Capabilities":
        """
        :param teachers: the study's teachers (none: everything is proposed)
        :return: what all of them offer
        """
        if not teachers:
            return cls()
        return cls(
            q_values=all(teacher.has_q_values for teacher in teachers),
            discrete=all(teacher.is_discrete for teacher in teachers),
            distribution=all(teacher.has_distribution for teacher in teachers),
            critic=all(teacher.has_critic for teacher in teachers),
        )


_study_capabilities = Capabilities()


@contextmanager
def tuning_with(teachers: Sequence[Teacher]) -> Iterator[None]:
    """
    Let the samplers see the teachers of the study being tuned in this process.

    rl-zoo3 calls samplers with a fixed signature (trial, n_actions, n_envs, additional_args) that has no room for
    the teacher, hence this process-wide setting.

    :param teachers: the study's teachers
    """
    global _study_capabilities
    previous = _study_capabilities
    _study_capabilities = Capabilities.of(teachers)
    try:
        yield
    finally:
        _study_capabilities = previous


# ---------------------------------------------------------------------------------------------- shared parts
def _sample_student(trial: optuna.Trial) -> dict[str, Any]:
    """Width and depth of the student network."""
    width = trial.suggest_categorical("net_width", NET_WIDTHS)
    depth = trial.suggest_int("net_depth", 1, 3)
    trial.set_user_attr("net_arch", [width] * depth)
    return {"net_width": width, "net_depth": depth}


def _convert_student(params: dict[str, Any], hyperparams: dict[str, Any]) -> None:
    hyperparams["policy_kwargs"] = {"net_arch": [params.pop("net_width")] * params.pop("net_depth")}


def _sample_off_policy(trial: optuna.Trial, gamma: bool = True) -> dict[str, Any]:
    """The off-policy parameters every student has, in rl-zoo3's ranges."""
    params: dict[str, Any] = {}
    if gamma:
        params["one_minus_gamma"] = trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
        trial.set_user_attr("gamma", 1 - params["one_minus_gamma"])
    params["batch_size_pow"] = trial.suggest_int("batch_size_pow", 4, 8)
    trial.set_user_attr("batch_size", 2 ** params["batch_size_pow"])
    params["learning_rate"] = trial.suggest_float("learning_rate", 1e-5, 0.003, log=True)
    train_freq = params["train_freq"] = trial.suggest_int("train_freq", 1, 10)
    params["subsample_steps"] = trial.suggest_int("subsample_steps", 1, min(train_freq, 8))
    return params


def _convert_off_policy(params: dict[str, Any], hyperparams: dict[str, Any]) -> None:
    if "one_minus_gamma" in params:
        hyperparams["gamma"] = 1 - params.pop("one_minus_gamma")
    hyperparams["batch_size"] = 2 ** params.pop("batch_size_pow")
    hyperparams["learning_rate"] = params.pop("learning_rate")
    hyperparams["train_freq"] = params.pop("train_freq")
    # One gradient step per env step, or fewer (rl-zoo3's DQN sampler)
    hyperparams["gradient_steps"] = max(hyperparams["train_freq"] // params.pop("subsample_steps"), 1)


def _convert_shared(sampled_params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of the parts every off-policy student shares, and the trial's parameters left."""
    params = dict(sampled_params)
    hyperparams: dict[str, Any] = {}
    _convert_off_policy(params, hyperparams)
    _convert_student(params, hyperparams)
    return params, hyperparams


def _sample_temperature(trial: optuna.Trial) -> float:
    return trial.suggest_float("temperature", 0.01, 20, log=True)


def _sample_distill_coef(trial: optuna.Trial) -> float:
    return trial.suggest_float("distill_coef", *DISTILL_COEF_RANGE, log=True)


# ---------------------------------------------------------------------------------------------- DistillDQN
def _recipe_fits(recipe: str, capabilities: Capabilities) -> bool:
    if recipe == "custom":
        return True
    settings = RECIPES[recipe]
    return capabilities.q_values or (settings["td_target"] != "teacher" and settings["distill_loss"] != "mse")


def _has_constant_coef(recipe: str) -> bool:
    """Whether the recipe's α is a number (tuned around it), not a rule such as QDagger's."""
    return isinstance(RECIPES[recipe].get("distill_coef"), (int, float))


def sample_distill_dqn_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Optuna sampler for DistillDQN (rl-zoo3's sampler signature).

    DQN's own parameters (rl-zoo3's ranges), the student's width and depth, and the distillation: a named
    ``recipe`` with its temperature T and coefficient α tuned around it (QDagger keeps its own α schedule), or
    ``recipe="custom"``: loss, KL direction, T, T² scaling, TD target, α (a constant or the QDagger rule) and the
    length of the teacher phase. Only choices the study's teacher supports are proposed (a policy-only teacher
    has no Q-values for ``td_target="teacher"`` or ``distill_loss="mse"``).

    :param trial: the Optuna trial
    :param n_actions: unused (rl-zoo3's signature)
    :param n_envs: unused
    :param additional_args: unused
    :return: DistillDQN keyword arguments: ``convert_distill_dqn_params(trial.params)``
    """
    capabilities = _study_capabilities
    params = _sample_off_policy(trial)
    params["exploration_fraction"] = trial.suggest_float("exploration_fraction", 0, 0.5)
    params["exploration_final_eps"] = trial.suggest_float("exploration_final_eps", 0, 0.2)
    params["target_update_interval"] = trial.suggest_int("target_update_interval", 1, 20000, log=True)
    params.update(_sample_student(trial))

    recipes = [name for name in (*RECIPES, "custom") if _recipe_fits(name, capabilities)]
    recipe = params["recipe"] = trial.suggest_categorical("recipe", recipes)
    if recipe == "custom":
        losses = ("kl", "nll", "mse") if capabilities.q_values else ("kl", "nll")
        distill_loss = params["distill_loss"] = trial.suggest_categorical("distill_loss", losses)
        if distill_loss == "kl":
            params["kl_direction"] = trial.suggest_categorical("kl_direction", KL_DIRECTIONS)
        if distill_loss != "mse":
            params["temperature_scaling"] = trial.suggest_categorical("temperature_scaling", [False, True])
        targets = ("student", "teacher", "none") if capabilities.q_values else ("student", "none")
        params["td_target"] = trial.suggest_categorical("td_target", targets)
        params["distill_coef_rule"] = trial.suggest_categorical("distill_coef_rule", ["constant", "qdagger"])
        params["teacher_phase"] = trial.suggest_categorical("teacher_phase", TEACHER_PHASES)
    distill_loss = params.get("distill_loss", RECIPES.get(recipe, {}).get("distill_loss", "kl"))
    if distill_loss != "mse":
        params["temperature"] = _sample_temperature(trial)
    if params.get("distill_coef_rule") == "constant" or (recipe != "custom" and _has_constant_coef(recipe)):
        params["distill_coef"] = _sample_distill_coef(trial)
    return convert_distill_dqn_params(params)


def convert_distill_dqn_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into DistillDQN keyword arguments (so ``--trial-id N`` rebuilds trial N).

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_distill_dqn_params`
    :return: keyword arguments
    """
    params, hyperparams = _convert_shared(sampled_params)
    recipe = params.pop("recipe")
    if recipe == "custom":
        # Every keyword is explicit; the "qdagger" base only fills those that the sampled loss does not use.
        hyperparams["recipe"] = "qdagger"
        rule = params.pop("distill_coef_rule")
        hyperparams["distill_coef"] = "qdagger" if rule == "qdagger" else params.pop("distill_coef")
        phase = params.pop("teacher_phase")
        hyperparams["teacher_rollout_steps"] = hyperparams["pretrain_gradient_steps"] = phase
        hyperparams["temperature_scaling"] = params.pop("temperature_scaling", False)
    else:
        hyperparams["recipe"] = recipe
    hyperparams.update(params)
    return hyperparams


# ---------------------------------------------------------------------------------------------- PolicyDistill
def sample_policy_distill_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Optuna sampler for PolicyDistill (rl-zoo3's sampler signature).

    The off-policy parameters (learning rate, batch size, update frequency), the student's width and depth, the
    distillation loss (``distill_loss``) with its KL direction and temperature T (discrete teachers), the weight α of
    value distillation (``distill_value_coef``, or none), and who acts (``data_policy``: the student, the teacher, or a
    teacher share β). Only losses every teacher of the study supports are proposed.

    :param trial: the Optuna trial
    :param n_actions: not used: the spaces come from the teachers (see :func:`tuning_with`)
    :param n_envs: not used either, nor ``additional_args`` (HER's, which PolicyDistill does not take)
    :param additional_args: see ``n_envs``
    :return: PolicyDistill keyword arguments: ``convert_policy_distill_params(trial.params)``
    """
    capabilities = _study_capabilities
    params = _sample_off_policy(trial, gamma=False)  # the student learns no return: PolicyDistill has no gamma
    params.update(_sample_student(trial))
    if capabilities.discrete:
        losses: tuple[str, ...] = ("kl", "nll")
    else:
        losses = ("kl", "mse", "nll") if capabilities.distribution else ("mse", "nll")
    distill_loss = params["distill_loss"] = trial.suggest_categorical("distill_loss", losses)
    if distill_loss == "kl":
        params["kl_direction"] = trial.suggest_categorical("kl_direction", KL_DIRECTIONS)
    if capabilities.discrete:
        params["temperature"] = _sample_temperature(trial)
    value_distillation = capabilities.critic and trial.suggest_categorical("value_distillation", [False, True])
    params["value_distillation"] = value_distillation
    if value_distillation:
        params["distill_value_coef"] = trial.suggest_float("distill_value_coef", 0.01, 2, log=True)
    data_policy = params["data_policy"] = trial.suggest_categorical("data_policy", ["student", "teacher", "mixed"])
    if data_policy == "mixed":
        params["teacher_share"] = trial.suggest_float("teacher_share", 0.05, 0.95)
    return convert_policy_distill_params(params)


def convert_policy_distill_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into PolicyDistill keyword arguments (so ``--trial-id N`` rebuilds trial N):
    no value distillation is ``distill_value_coef=0``, and ``data_policy="mixed"`` becomes its teacher share β. Trials
    of studies from before the rename of ``policy_loss`` / ``value_coef`` keep those names, which PolicyDistill still
    takes (with a warning).

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_policy_distill_params`
    :return: keyword arguments
    """
    params, hyperparams = _convert_shared(sampled_params)
    if not params.pop("value_distillation", False):
        hyperparams["distill_value_coef"] = 0.0
    if params["data_policy"] == "mixed":
        params["data_policy"] = params.pop("teacher_share")
    hyperparams.update(params)
    return hyperparams


# ---------------------------------------------------------------------------------------------- DistillPPO
def sample_distill_ppo_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Optuna sampler for DistillPPO: rl-zoo3's PPO sampler (``rl_zoo3.hyperparams_opt.sample_ppo_params``), plus how
    strongly and for how long the student is pulled towards its teacher: ``distill_coef_rule``
    (:data:`DISTILL_PPO_COEF_RULES`, DistillDQN's trial parameter of the same name) and ``distill_coef_init`` (λ_0,
    log-uniform in :data:`DISTILL_PPO_COEF_RANGE`).

    :param trial: the Optuna trial
    :param n_actions: number of actions (rl-zoo3's sampler signature)
    :param n_envs: number of envs (rl-zoo3's sampler signature)
    :param additional_args: rl-zoo3's extra sampler arguments
    :return: DistillPPO keyword arguments, equal to ``convert_distill_ppo_params(trial.params)``
    """
    from rl_zoo3.hyperparams_opt import sample_ppo_params

    sample_ppo_params(trial, n_actions, n_envs, additional_args)
    trial.suggest_categorical("distill_coef_rule", DISTILL_PPO_COEF_RULES)
    trial.suggest_float("distill_coef_init", *DISTILL_PPO_COEF_RANGE, log=True)
    return convert_distill_ppo_params(trial.params)


def convert_distill_ppo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into DistillPPO keyword arguments (rl-zoo3's on-policy converter for PPO's part).
    λ_t is expressed with the string forms of ``distill_coef`` (``"qdagger_<λ0>"``, ``"lin_<λ0>"``), which need no
    callable in the trial. Trials of studies from before the renames (``distill_coef_mode``, whose ``"auto"`` is now
    ``"qdagger"``) still convert, with a ``FutureWarning``.

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_distill_ppo_params`
    :return: keyword arguments, with ``distill_coef`` as ``"qdagger_<λ0>"``, ``"lin_<λ0>"`` or a float
    """
    from rl_zoo3.hyperparams_opt import convert_onpolicy_params

    params = rename_keywords("DistillPPO's Optuna trial", RENAMED_TRIAL_PARAMS, sampled_params)
    rule = rename_value("DistillPPO's Optuna trial", "distill_coef_rule", params.pop("distill_coef_rule"), RENAMED_TRIAL_RULES)
    initial = float(params.pop("distill_coef_init"))
    if rule not in DISTILL_PPO_COEF_RULES:
        raise ValueError(f"Unknown distill_coef_rule {rule!r} in the trial: expected one of {DISTILL_PPO_COEF_RULES}.")
    forms: dict[str, float | str] = {QDAGGER: f"{QDAGGER}_{initial}", "linear": f"lin_{initial}", "constant": initial}
    return {**convert_onpolicy_params(params), "distill_coef": forms[rule]}
