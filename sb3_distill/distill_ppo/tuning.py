"""
Optuna sampler and converter of DistillPPO, with rl-zoo3's signatures: rl-zoo3's own PPO sampler, plus how strongly
and for how long the student is pulled towards its teacher.

The converter rebuilds the keyword arguments from ``trial.params`` alone (what rl-zoo3's ``--trial-id`` and
``load_trial`` use), so λ_t is expressed with DistillPPO's string forms (``"auto_<λ0>"``, ``"lin_<λ0>"``), which
need no callable in the trial.
"""

from typing import Any

import optuna

#: How λ_t evolves: QDagger's performance rule, linear decay to 0, or constant.
DISTILL_COEF_MODES: tuple[str, ...] = ("auto", "linear", "constant")
#: Range of λ_0 (log-uniform).
DISTILL_COEF_RANGE: tuple[float, float] = (0.03, 10.0)


def sample_distill_ppo_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Sampler for DistillPPO: rl-zoo3's PPO sampler (``rl_zoo3.hyperparams_opt.sample_ppo_params``), plus
    ``distill_coef_mode`` (:data:`DISTILL_COEF_MODES`) and ``distill_coef_init`` (λ_0, log-uniform in
    :data:`DISTILL_COEF_RANGE`).

    :param trial: the Optuna trial
    :param n_actions: number of actions (rl-zoo3's sampler signature)
    :param n_envs: number of envs (rl-zoo3's sampler signature)
    :param additional_args: rl-zoo3's extra sampler arguments
    :return: DistillPPO keyword arguments, equal to ``convert_distill_ppo_params(trial.params)``
    """
    from rl_zoo3.hyperparams_opt import sample_ppo_params

    sample_ppo_params(trial, n_actions, n_envs, additional_args)
    trial.suggest_categorical("distill_coef_mode", DISTILL_COEF_MODES)
    trial.suggest_float("distill_coef_init", *DISTILL_COEF_RANGE, log=True)
    return convert_distill_ppo_params(trial.params)


def convert_distill_ppo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into DistillPPO keyword arguments (rl-zoo3's on-policy converter for PPO's part).

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_distill_ppo_params`
    :return: keyword arguments, with ``distill_coef`` as ``"auto_<λ0>"``, ``"lin_<λ0>"`` or a float
    """
    from rl_zoo3.hyperparams_opt import convert_onpolicy_params

    params = dict(sampled_params)
    mode, initial = params.pop("distill_coef_mode"), float(params.pop("distill_coef_init"))
    if mode not in DISTILL_COEF_MODES:
        raise ValueError(f"Unknown distill_coef_mode {mode!r} in the trial: expected one of {DISTILL_COEF_MODES}.")
    forms: dict[str, float | str] = {"auto": f"auto_{initial}", "linear": f"lin_{initial}", "constant": initial}
    distill_coef = forms[mode]
    return {**convert_onpolicy_params(params), "distill_coef": distill_coef}


__all__ = ["DISTILL_COEF_MODES", "DISTILL_COEF_RANGE", "convert_distill_ppo_params", "sample_distill_ppo_params"]
