"""The report of a run: markdown tables (teachers, learning, latency) and the learning curves, from ``results.json``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .stats import summary_rows
from .suite import Suite


def fmt(value: Any, pattern: str = "{:,.0f}", none: str = "never") -> str:
    """
    :param value: a number or ``None``
    :param pattern: its format
    :param none: what ``None`` reads as
    :return: the cell
    """
    return none if value is None else pattern.format(value)


def bounded(summary: dict[str, Any], key: str, pattern: str) -> str:
    """
    :param summary: a summary
    :param key: a ratio to the reference method
    :param pattern: its format
    :return: the ratio, as "<x" where the reference never reached the level and its whole budget is the reference
    """
    value = summary.get(key)
    if value is None:
        return "–"
    return ("<" if summary.get(f"{key}_is_upper_bound") else "") + pattern.format(value)


def us(seconds: float | None) -> float | None:
    """
    :param seconds: a duration or ``None``
    :return: microseconds
    """
    return None if seconds is None else seconds * 1e6


def _steps_of_anchor(level: float) -> Callable[[dict[str, Any]], str]:
    def cell(s: dict[str, Any]) -> str:
        fraction = s.get(f"steps_to_{level}_of_anchor")
        return fmt(s[f"steps_to_{level}"]) + ("" if fraction is None else f" ({fraction:.1%})")

    return cell


def _iqm(s: dict[str, Any]) -> str:
    low, high = s.get("final_score_iqm_ci", (None, None))
    return f"{s['final_score_iqm']:.2f}" + ("" if low is None else f" [{low:.2f}, {high:.2f}]")


def _grad_step(s: dict[str, Any]) -> str:
    if s.get("grad_step_s") is None:
        return "–"
    return f"{s['grad_step_s'] * 1e6:,.0f} µs ({s['grad_step_ratio']:.2f}×)"


#: Columns a suite's learning table may use: name → (header, cell of a summary).
COLUMNS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "params": ("params (ratio)", lambda s: f"{s['params']:,} ({s['params_ratio']:.1%})"),
    "acting_params": ("acting params (of teacher's)", lambda s: f"{s['params']:,} ({s['params_ratio']:.1%})"),
    "critic_params": ("critic params", lambda s: fmt(s.get("critic_params"), "{:,}", "–")),
    "seeds": ("seeds", lambda s: str(s["n_seeds"])),
    "steps_to_0.9": ("steps to 0.9", lambda s: fmt(s["steps_to_0.9"])),
    "steps_to_1.0": ("steps to 1.0", lambda s: fmt(s["steps_to_1.0"])),
    "steps_to_0.9_anchor": ("steps to 0.9 (of teacher's training)", _steps_of_anchor(0.9)),
    "steps_to_1.0_anchor": ("steps to 1.0 (of teacher's training)", _steps_of_anchor(1.0)),
    "budget_anchor": ("budget (of teacher's training)", lambda s: f"{s['budget']:,} ({s['budget_of_anchor']:.1%})"),
    "steps_ratio": ("% of reference's", lambda s: bounded(s, "steps_ratio_vs_reference", "{:.1%}")),
    "seeds_at_1.0": ("seeds at 1.0", lambda s: f"{s['seeds_reaching_1.0']}/{s['n_seeds']}"),
    "seeds_at_0.9": ("seeds at 0.9", lambda s: f"{s['seeds_reaching_0.9']}/{s['n_seeds']}"),
    "steps_to_weak": (
        "steps to the weak teacher's level",
        lambda s: fmt(s["steps_to_weak"]) + f" (level {s['levels']['weak']:.2f})",
    ),
    "seeds_at_weak": ("seeds at weak", lambda s: f"{s['seeds_reaching_weak']}/{s['n_seeds']}"),
    "median_seed_steps": (
        "per-seed median steps to 1.0 (% of reference's)",
        lambda s: fmt(s["median_seed_steps_to_1.0"]) + f" ({bounded(s, 'median_seed_steps_ratio_vs_reference', '{:.1%}')})",
    ),
    "final": ("final (mean ± std)", lambda s: f"{s['final_score_mean']:.2f} ± {s['final_score_std']:.2f}"),
    "final_iqm": ("final IQM [95% CI]", _iqm),
    "return_ratio": ("return / teacher's", lambda s: f"{s['final_return_ratio']:.2f}"),
    "wall_time_ratio": ("wall-time ratio", lambda s: bounded(s, "wall_time_ratio_vs_reference", "{:.2f}")),
    "grad_step_ratio": ("grad-step ratio", lambda s: fmt(s["grad_step_ratio"], "{:.2f}", "–")),
    "grad_step": ("gradient step (ratio)", _grad_step),
    "supervised_grad_step_ratio": (
        "grad-step ratio vs supervised",
        lambda s: fmt(s.get("supervised_grad_step_ratio"), "{:.2f}", "–"),
    ),
    "predict_ratio": ("predict() ratio", lambda s: fmt(s.get("latency_predict_ratio"), "{:.2f}", "–")),
    "forward_ratio": ("forward ratio", lambda s: fmt(s.get("latency_forward_ratio"), "{:.2f}", "–")),
    "onnx_us": ("ONNX µs", lambda s: fmt(us(s.get("latency_onnx_s")), "{:.0f}", "–")),
    "peak_rss": ("peak RSS MB", lambda s: fmt(s.get("peak_rss_mb"), "{:.0f}", "–")),
}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """
    :param header: column titles
    :param rows: cells
    :return: a markdown table
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def teachers_table(results: dict[str, Any], suite: Suite) -> list[str]:
    """
    :param results: the content of ``results.json``
    :param suite: its suite
    :return: the teachers' returns, sizes, training budgets, one-observation latencies and load times (the safe
        reader, the default, and SB3's with ``trust_remote_code=True``)
    """
    kinds = ("predict", "forward", "torchscript", "onnx")
    header = ["env", "teacher", "return", "random return", "parameters", "trained for", "predict()", "forward", "TorchScript"]
    header += ["ONNX", "load: safe / SB3's reader"]
    rows = []
    for env_id, t in results["teachers"].items():
        latency = t["latency_s"]
        rows.append(
            [env_id, suite.teachers.get(env_id, "?")]
            + [
                f"{t['teacher_return']:.1f} ± {t['teacher_return_std']:.1f} ({t['n_episodes']} ep.)",
                f"{t['random_return']:.1f}",
            ]
            + [f"{t['params']:,}", fmt(t.get("training_steps"), "{:,}", "–")]
            + [fmt(us(latency.get(kind)), "{:.0f} µs", "–") for kind in kinds]
            + [_load_times(t.get("load_s"))]
        )
    return table(header, rows)


def _load_times(load_s: dict[str, float] | None) -> str:
    if not load_s:
        return "–"  # results of a benchmark run before load times were measured
    return f"{load_s['safe'] * 1e3:.0f} / {load_s['trusted'] * 1e3:.0f} ms"


def learning_table(results: dict[str, Any], suite: Suite) -> list[str]:
    """
    :param results: the content of ``results.json``
    :param suite: its suite
    :return: one row per env × method, with the suite's columns
    """
    columns = [COLUMNS[name] for name in suite.learning_columns]
    rows = [
        [s["env"], suite.methods.get(s["method"], s["method"]), *(cell(s) for _, cell in columns)] for s in results["summary"]
    ]
    return table(["env", "method", *(title for title, _ in columns)], rows)


def latency_table(results: dict[str, Any], suite: Suite) -> list[str]:
    """
    Latency and throughput of the teachers' and the students' acting networks at every measured batch size.

    :param results: the content of ``results.json``
    :param suite: its suite
    :return: the table (µs per call, and observations per second at the largest batch)
    """
    header, rows = ["env", "agent"], []
    for size in suite.latency_batch_sizes:
        header += [f"{kind} ×{size}" for kind in ("eager", "TorchScript", "ONNX")]
    largest = max(suite.latency_batch_sizes)
    header.append(f"ONNX obs/s ×{largest}")
    agents = [(env_id, "teacher", t["latency_s"]) for env_id, t in results["teachers"].items()]
    # one row per env × method: the same network at every budget
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    for s in results["summary"]:
        firsts.setdefault((s["env"], s["method"]), s)
    agents += [(s["env"], suite.methods.get(s["method"], s["method"]), _summary_latency(s)) for s in firsts.values()]
    for env_id, name, latency in sorted(agents, key=lambda agent: list(results["teachers"]).index(agent[0])):
        cells = [env_id, name]
        for size in suite.latency_batch_sizes:
            suffix = "" if size == 1 else f"@{size}"
            cells += [fmt(us(latency.get(kind + suffix)), "{:,.0f} µs", "–") for kind in ("forward", "torchscript", "onnx")]
        onnx = latency.get("onnx" + ("" if largest == 1 else f"@{largest}"))
        cells.append(fmt(onnx and largest / onnx, "{:,.0f}", "–"))
        rows.append(cells)
    return table(header, rows)


def _summary_latency(summary: dict[str, Any]) -> dict[str, float]:
    return {
        key[len("latency_") : -len("_s")]: value
        for key, value in summary.items()
        if key.startswith("latency_") and key.endswith("_s")
    }


def markdown_report(results: dict[str, Any], suite: Suite) -> str:
    """
    :param results: the content of ``results.json``
    :param suite: its suite
    :return: the tables, in markdown
    """
    lines = [f"Command: `{results['command']}`", ""]
    if not results.get("complete", True):
        lines += ["**Partial results**: the run was still going (or was stopped) when this was written.", ""]
    lines += [f"Machine: {results['machine']}. Total wall time: {results['wall_seconds'] / 60:.1f} min.", ""]
    lines += ["### Teachers", "", *teachers_table(results, suite), ""]
    if results["summary"]:
        lines += ["### Learning", "", *learning_table(results, suite)]
    lines += suite.report_sections(results)
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(results["skipped"])]
    if results.get("failed"):
        lines += ["", "Failed runs: " + "; ".join(results["failed"])]
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any], suite: Suite, path: Path) -> None:
    """
    Normalized score vs env steps, mean over seeds with the min–max band, one panel per env.

    :param results: the content of ``results.json``
    :param suite: its suite
    :param path: the PNG to write
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [env_id for env_id in results["teachers"] if any(s["env"] == env_id for s in results["summary"])]
    columns = min(2, len(envs))
    rows_count = math.ceil(len(envs) / columns)
    figure, axes = plt.subplots(rows_count, columns, figsize=(6.5 * columns, 4.2 * rows_count), squeeze=False)
    colors = dict(zip(suite.methods, plt.get_cmap("tab10").colors, strict=False))
    for axis, env_id in zip(axes.flat, envs, strict=False):
        for summary in (s for s in results["summary"] if s["env"] == env_id):
            method, budget = summary["method"], summary["budget"]
            runs = summary_rows(results, summary)
            scores = np.array([[record["normalized_score"] for record in row["curve"]] for row in runs])
            steps = summary["steps"]
            # a student run at several budgets: one curve per budget, the larger ones dashed
            budgets = sorted({s["budget"] for s in results["summary"] if s["env"] == env_id and s["method"] == method})
            label = f"{suite.methods.get(method, method)} ({summary['n_seeds']} seeds)"
            label += f", {budget:,} steps" if len(budgets) > 1 else ""
            style = "-" if budget == budgets[0] else "--"
            axis.plot(steps, scores.mean(axis=0), style, color=colors.get(method), label=label, linewidth=1.8)
            axis.fill_between(steps, scores.min(axis=0), scores.max(axis=0), color=colors.get(method), alpha=0.15)
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="teacher level (1.0)")
        if suite.plot_log_x:
            axis.set_xscale("log")
        lowest = min(min(s["mean_curve"]) for s in results["summary"] if s["env"] == env_id)
        axis.set_ylim(max(min(lowest - 0.1, -0.2), -2.0), 1.4)
        axis.set_title(env_id)
        axis.set_xlabel(suite.steps_label)
        axis.set_ylabel("teacher-normalized score")
        axis.grid(alpha=0.3, which="both")
    for axis in list(axes.flat)[len(envs) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=columns + 1, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.1 if rows_count == 1 else 0.06, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
