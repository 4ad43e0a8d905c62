"""The robustness curve: each agent's mean return (± std over episodes) against the perturbation's level."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sb3_distill.common.files import atomic_path


def plot_robustness(
    results: Mapping[str, list[dict[str, Any]]] | list[dict[str, Any]],
    path: str | Path | None = None,
    ax: Any = None,
    title: str | None = None,
    reference: tuple[float, float] | None = None,
    force: bool = False,
) -> Any:
    """
    Draw what :func:`~sb3_distill.robustness.evaluate_robustness` returned, one line per agent.

    :param results: agent label → its rows, or one agent's rows
    :param path: a PNG / PDF / SVG file to write (atomically), or ``None``
    :param ax: matplotlib axes to draw on (default: a new figure)
    :param title: the plot's title (default: the perturbation's name)
    :param reference: ``(random_return, nominal_return)``: plot normalized scores instead of returns
    :param force: overwrite ``path`` if it exists
    :return: the matplotlib ``Figure``
    """
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if path is not None and Path(path).exists() and not force:
        raise FileExistsError(f"{path} exists: choose another path, or pass force=True to overwrite it.")
    series = {"agent": results} if isinstance(results, list) else dict(results)
    if not series or not all(series.values()):
        raise ValueError("plot_robustness needs at least one non-empty list of rows (what evaluate_robustness returns).")
    if ax is None:
        figure, ax = plt.subplots(figsize=(5.5, 3.8))
    else:
        figure = ax.figure
    for label, rows in series.items():
        levels = [row["level"] for row in rows]
        means = [row["mean"] for row in rows]
        stds = [row["std"] for row in rows]
        if reference is not None:
            low, high = reference
            means = [(mean - low) / (high - low) for mean in means]
            stds = [std / abs(high - low) for std in stds]
        ax.plot(levels, means, marker="o", label=label)
        low_band = [mean - std for mean, std in zip(means, stds, strict=True)]
        high_band = [mean + std for mean, std in zip(means, stds, strict=True)]
        ax.fill_between(levels, low_band, high_band, alpha=0.2)
    perturbation = next(iter(series.values()))[0].get("perturbation", "perturbation")
    ax.set_xlabel(f"{perturbation} level")
    ax.set_ylabel("normalized score" if reference is not None else "episode return")
    ax.set_title(title or perturbation)
    ax.grid(alpha=0.3)
    if len(series) > 1 or "agent" not in series:
        ax.legend()
    figure.tight_layout()
    if path is not None:
        path = Path(path)
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=120)
    return figure


__all__ = ["plot_robustness"]
