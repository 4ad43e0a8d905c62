"""Scores and their statistics: teacher-normalized returns, IQM with bootstrap confidence intervals, run summaries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats


def normalized(score: float, reference_returns: Sequence[float]) -> float:
    """
    :param score: a mean return
    :param reference_returns: ``(G_random, G_teacher)``
    :return: (G − G_random) / (G_teacher − G_random)
    """
    random_return, teacher_return = reference_returns
    return float((score - random_return) / (teacher_return - random_return))


def _trimmed(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(values, 0.25, axis=axis)


def iqm(values: Sequence[float]) -> float:
    """
    :param values: one value per seed
    :return: interquartile mean (25% trimmed from each end, as rliable computes it)
    """
    return float(_trimmed(np.asarray(values, dtype=float)))


def iqm_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2_000, seed: int = 0) -> tuple[float, float]:
    """
    Percentile-bootstrap confidence interval of the IQM over seeds (rliable's method, without its stratification
    over tasks: one task at a time here).

    :param values: one value per seed
    :param confidence: confidence level
    :param n_resamples: bootstrap resamples
    :param seed: seed of the resampling
    :return: ``(low, high)``; both the IQM itself where there is no spread to resample (one seed, or all equal)
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.ptp(data) == 0:
        value = iqm(data)
        return value, value
    result = stats.bootstrap(
        (data,),
        _trimmed,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def first_reaching(records: Sequence[dict[str, Any]], level: float) -> dict[str, Any] | None:
    """
    :param records: evaluations in step order, each with ``normalized_score``
    :param level: the normalized score to reach
    :return: the first record at or above ``level``, or ``None``
    """
    return next((record for record in records if record["normalized_score"] >= level), None)


def _ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else float(value) / float(reference)


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.median(present)) if present else None


def summarize_group(group: list[dict[str, Any]], teacher: dict[str, Any], levels: dict[str, float]) -> dict[str, Any]:
    """
    One env × method: the mean curve over seeds and what it reaches, per-seed medians, finals (mean, std, IQM and its
    95% CI), sizes, and ratios to the teacher (latency) and to the teacher's own training budget (env steps).

    :param group: the rows of one env × method (one per seed, same evaluation grid)
    :param teacher: the teacher's record
    :param levels: name → normalized score whose first crossing is reported
    :return: the summary
    """
    first = group[0]
    steps = [record["step"] for record in first["curve"]]
    scores = np.array([[record["normalized_score"] for record in row["curve"]] for row in group])
    mean_curve = scores.mean(axis=0)
    summary: dict[str, Any] = dict(env=first["env"], method=first["method"], seeds=sorted(row["seed"] for row in group))
    summary.update(n_seeds=len(group), budget=first["budget"], steps=steps, mean_curve=mean_curve.tolist())
    anchor = teacher.get("training_steps")
    summary["levels"] = levels
    for name, level in levels.items():
        index = next((i for i, value in enumerate(mean_curve) if value >= level), None)
        summary[f"steps_to_{name}"] = steps[index] if index is not None else None
        summary[f"steps_to_{name}_of_anchor"] = _ratio(summary[f"steps_to_{name}"], anchor)
        reached = [row[f"steps_to_{name}"] for row in group if row[f"steps_to_{name}"] is not None]
        summary[f"seeds_reaching_{name}"] = len(reached)
        summary[f"median_seed_steps_to_{name}"] = _median(reached)
    summary["budget_of_anchor"] = _ratio(summary["budget"], anchor)
    summary["median_train_seconds_to_1.0"] = _median([row.get("train_seconds_to_1.0") for row in group])
    summary["median_train_seconds"] = _median([row["train_seconds"] for row in group])
    finals = [row["final_normalized_score"] for row in group]
    summary.update(final_score_mean=float(np.mean(finals)), final_score_std=float(np.std(finals)), final_score_iqm=iqm(finals))
    summary["final_score_iqm_ci"] = list(iqm_ci(finals))
    summary["final_return_mean"] = float(np.mean([row["final_return"] for row in group]))
    summary["final_return_ratio"] = summary["final_return_mean"] / teacher.get("reference_return", teacher["teacher_return"])
    for key in ("params", "params_ratio", "critic_params"):
        summary[key] = first.get(key)
    summary["grad_step_ratio"] = _median([row.get("grad_step_ratio") for row in group])
    summary["grad_step_s"] = _median([row.get("grad_step_s") for row in group])
    summary["supervised_grad_step_ratio"] = _median([row.get("supervised_grad_step_ratio") for row in group])
    summary["supervised_grad_step_s"] = _median([row.get("supervised_grad_step_s") for row in group])
    for kind in sorted({kind for row in group for kind in row["latency_s"]}):
        summary[f"latency_{kind}_s"] = _median([row["latency_s"].get(kind) for row in group])
        if kind in teacher["latency_s"]:
            summary[f"latency_{kind}_ratio"] = summary[f"latency_{kind}_s"] / teacher["latency_s"][kind]
    summary["peak_rss_mb"] = _median([row["peak_rss_mb"] for row in group])
    return summary


def add_reference_ratios(summaries: list[dict[str, Any]], reference_method: str) -> None:
    """
    Steps and wall time to teacher level of every method relative to ``reference_method`` (e.g. DQN from scratch) on
    the same env, in place. Where the reference never gets there within its budget, its whole budget (time) gives an
    upper bound, flagged by ``<key>_is_upper_bound``.

    :param summaries: the summaries of one run
    :param reference_method: the method the ratios are taken against
    """
    by_key = {(summary["env"], summary["method"]): summary for summary in summaries}
    for summary in summaries:
        reference = by_key.get((summary["env"], reference_method))
        if reference is None:
            continue
        for key, ours, fallback in (
            ("steps_ratio_vs_reference", "steps_to_1.0", "budget"),
            ("median_seed_steps_ratio_vs_reference", "median_seed_steps_to_1.0", "budget"),
            ("wall_time_ratio_vs_reference", "median_train_seconds_to_1.0", "median_train_seconds"),
        ):
            theirs, bound = reference[ours], False
            if theirs is None and summary[ours] is not None:
                theirs, bound = reference[fallback], True
            summary[key] = _ratio(summary[ours], theirs)
            summary[f"{key}_is_upper_bound"] = bound


def summary_rows(results: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """
    :param results: the content of ``results.json``
    :param summary: one of its summaries
    :return: the runs that summary is made of (its env × method × budget)
    """
    cell = (summary["env"], summary["method"], summary["budget"])
    return [row for row in results["rows"] if (row["env"], row["method"], row["budget"]) == cell]


def summarize(
    rows: list[dict[str, Any]],
    teachers: dict[str, dict[str, Any]],
    levels: Callable[[dict[str, Any]], dict[str, float]] | None = None,
    reference_method: str | None = None,
) -> list[dict[str, Any]]:
    """
    :param rows: result rows (one per env × method × seed), in report order
    :param teachers: teacher records by env
    :param levels: teacher record → name → normalized score whose first crossing is reported (default: the rows'
        own ``levels``, else 0.9 and 1.0)
    :param reference_method: the baseline the step and wall-time ratios are taken against, if any
    :return: one summary per env × method × budget (runs of one student at two budgets, e.g. ``--budget-scale``,
        are two cells: their evaluation grids differ), in the order of ``rows``
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["env"], row["method"], row["budget"]), []).append(row)
    summaries = []
    for (env_id, _, _), group in groups.items():
        default = levels(teachers[env_id]) if levels is not None else {"0.9": 0.9, "1.0": 1.0}
        summaries.append(summarize_group(group, teachers[env_id], group[0].get("levels", default)))
    if reference_method is not None:
        add_reference_ratios(summaries, reference_method)
    return summaries
