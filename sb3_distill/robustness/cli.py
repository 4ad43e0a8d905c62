"""
``sb3-distill robustness MODEL [MODEL ...] --env ENV --perturbation NAME --levels L [L ...]``.

Each MODEL is a student's ``.zip``, an rl-zoo3 run folder, a teacher spec (``dqn/CartPole-v1``) or an exported
``.onnx`` / ``.pt`` file. Prints one table (mean ± std of the episode returns per level and model); ``--out`` writes
the rows as JSON, ``--plot`` the curves. Every input is checked before the first episode.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sb3_distill.common.files import atomic_path
from sb3_distill.errors import TeacherError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sb3-distill robustness",
        description="Evaluate agents under a perturbation (observation noise, delays, action noise, sticky actions, "
        "dynamics shifts, FGSM / PGD attacks), level by level.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="a .zip, a run folder, a teacher spec, or an exported file")
    parser.add_argument("--env", default=None, help="gymnasium env id (default: the first model's env, if it records one)")
    parser.add_argument(
        "--perturbation",
        required=True,
        help="obs_noise, obs_delay, action_noise, sticky_actions, fgsm, pgd, dynamics:PARAMETER (e.g. dynamics:length), "
        "gravity, wind_power, turbulence_power",
    )
    parser.add_argument("--levels", nargs="+", required=True, help="levels to measure, e.g. 0 0.1 0.3")
    parser.add_argument("--episodes", type=int, default=10, help="deterministic episodes per level (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env and of the perturbation (default 0)")
    parser.add_argument(
        "--scale",
        default="auto",
        help="observation scale of noise and attacks: auto, rollout, bounds, or a number (1: absolute)",
    )
    parser.add_argument("--attack-steps", type=int, default=10, help="PGD's steps (default 10)")
    parser.add_argument(
        "--env-kwargs", default=None, help="gymnasium.make keyword arguments as JSON, e.g. '{\"enable_wind\": true}'"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="draw the curves (PNG, PDF or SVG)")
    parser.add_argument("--force", action="store_true", help="overwrite --out / --plot if they exist")
    return parser.parse_args(argv)


def _scale(text: str) -> str | float:
    if text in ("auto", "rollout", "bounds"):
        return text
    from sb3_distill.robustness.evaluation import RobustnessError

    try:
        return float(text)
    except ValueError:
        raise RobustnessError(f"--scale {text!r}: use auto, rollout, bounds, or a number.") from None


def _table(results: dict[str, list[dict[str, Any]]]) -> str:
    labels = list(results)
    first = results[labels[0]]
    lines = [
        f"| {first[0]['perturbation']} level | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for index, row in enumerate(first):
        cells = [f"{results[label][index]['mean']:.1f} ± {results[label][index]['std']:.1f}" for label in labels]
        lines.append(f"| {row['level']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """
    :param argv: the arguments after ``robustness``
    :return: exit status (0: measured; 2: bad input, nothing run)
    """
    args = parse_args(argv)
    from sb3_distill.robustness.adversarial import AttackError
    from sb3_distill.robustness.evaluation import RobustnessError, check_robustness_inputs, evaluate_robustness, load_agent

    try:
        for path in (args.out, args.plot):
            if path is not None and path.exists() and not args.force:
                raise RobustnessError(f"{path} exists: choose another path, or pass --force to overwrite it.")
        if args.episodes < 1:
            raise RobustnessError(f"--episodes must be >= 1, not {args.episodes}.")
        env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else None
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise RobustnessError(f"--env-kwargs must be a JSON object, not {args.env_kwargs!r}.")
        scale = _scale(args.scale)
        agents = {model: load_agent(model) for model in args.models}
        env = args.env or getattr(next(iter(agents.values())), "env_id", None)
        if env is None:
            raise RobustnessError("The first model records no env id: give --env ENV_ID.")
        for agent in agents.values():
            check_robustness_inputs(agent, env, args.perturbation, args.levels)
    except (RobustnessError, AttackError, TeacherError, json.JSONDecodeError) as error:
        print(f"sb3-distill robustness: error: {error}", file=sys.stderr)
        return 2
    results = {
        model: evaluate_robustness(
            agent, env, args.perturbation, args.levels, args.episodes, args.seed, scale, env_kwargs, args.attack_steps
        )
        for model, agent in agents.items()
    }
    print(f"{env}, {args.episodes} episodes per level, seed {args.seed}:\n{_table(results)}")
    if args.out is not None:
        with atomic_path(args.out) as temporary:
            temporary.write_text(json.dumps(dict(env=env, perturbation=args.perturbation, results=results), indent=1))
        print(f"Wrote {args.out}")
    if args.plot is not None:
        from sb3_distill.robustness.plot import plot_robustness

        plot_robustness(results, args.plot, title=f"{env}: {args.perturbation}", force=True)
        print(f"Wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
