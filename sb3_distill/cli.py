"""
``sb3-distill`` (also ``python -m sb3_distill``): rl-zoo3's commands, with our algorithms registered.

::

    sb3-distill train --algo distill_dqn --env CartPole-v1                  # rl-zoo3's train: every flag works
    sb3-distill train --algo distill_dqn --env CartPole-v1 -optimize --storage logs/study.log --study-name s
    sb3-distill enjoy --algo distill_dqn --env CartPole-v1 -f logs/         # the student plays, no teacher needed
    sb3-distill plot_train --algo distill_dqn --env CartPole-v1 -f logs/    # rl-zoo3's plot scripts
    sb3-distill demo                                                        # the guided demo
    sb3-distill robustness student.zip dqn/CartPole-v1 --env CartPole-v1 --perturbation obs_noise --levels 0 0.1 0.3

``train`` and ``enjoy`` also take every stock rl-zoo3 algorithm. Without ``-conf``, ``train`` reads our packaged
``hyperparams/{algo}.yml`` (rl-zoo3's own file for its algorithms).
"""

import ast
import difflib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sb3_distill.errors import TeacherError

USAGE = """usage: sb3-distill {train,enjoy,plot_train,plot_from_file,all_plots,demo,export,robustness} [ARGS...]

Knowledge distillation for Stable-Baselines3, through rl-zoo3's commands:

  train           rl-zoo3's train (every flag), also for --algo distill_dqn / policy_distill / distill_ppo;
                  without -conf it reads sb3-distill's packaged hyperparams/{algo}.yml; the student
                  trains on its teacher's env_wrapper / frame_stack unless its entry sets them;
                  -optimize --storage x.log | postgresql://... for distributed tuning (the trials of
                  killed workers are retried)
  enjoy           rl-zoo3's enjoy: watch a saved agent (a student needs no teacher)
  plot_train      rl-zoo3's training-curve plot
  plot_from_file  rl-zoo3's plots from a results file
  all_plots       rl-zoo3's evaluation plots
  demo            a short guided demo: teacher, student, comparison
  export          write a student as ONNX, TorchScript or C (int8 too): observation -> greedy action, Q-values
  robustness      agents' returns under a perturbation, level by level (observation noise, delays, action
                  noise, sticky actions, dynamics shifts, FGSM / PGD attacks)

Every command also takes --trust-remote-code: read teacher files (and Hub downloads) as SB3 does, with
pickle, which can run any code -- only for files whose author you trust (same as SB3_DISTILL_TRUST_REMOTE_CODE=1).

Run 'sb3-distill COMMAND --help' for the flags of a command."""

#: The opt-in of every command (taken out before the command parses its flags)
TRUST_FLAG = "--trust-remote-code"


@contextmanager
def _as_script(prog: str, args: Sequence[str]) -> Iterator[None]:
    """rl-zoo3's scripts read ``sys.argv``: give them ours for the duration of the call."""
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        yield
    finally:
        sys.argv = saved


def _is_hyperparams_flag(token: str) -> bool:
    return token == "-params" or (token.startswith("--hy") and "--hyperparams".startswith(token))


def quote_teacher_specs(args: Sequence[str]) -> list[str]:
    """
    Let ``-params teacher:dqn/CartPole-v1`` work as written.

    rl-zoo3 evaluates every ``-params key:value`` as Python, so a teacher spec (a zoo id, a path) would have to be
    typed ``teacher:"'dqn/CartPole-v1'"``. A ``teacher`` value that is not already a Python literal is quoted.

    :param args: the ``train`` arguments
    :return: the same arguments, teacher values quoted where needed
    """
    result, in_params = [], False
    for token in args:
        if token.startswith("-") and not token.startswith("teacher:"):
            in_params = _is_hyperparams_flag(token)
        elif in_params and token.startswith("teacher:"):
            value = token[len("teacher:") :]
            try:
                ast.literal_eval(value)
            except (ValueError, SyntaxError):
                token = f"teacher:{value!r}"
        result.append(token)
    return result


@contextmanager
def _distill_experiment_manager() -> Iterator[None]:
    """rl-zoo3's ``train()`` builds ``ExperimentManager`` by its module-level name: use ours for this call."""
    import rl_zoo3.train

    from sb3_distill.zoo import DistillExperimentManager

    saved = rl_zoo3.train.ExperimentManager
    rl_zoo3.train.ExperimentManager = DistillExperimentManager  # type: ignore[misc]
    try:
        yield
    finally:
        rl_zoo3.train.ExperimentManager = saved  # type: ignore[misc]


def _train(args: list[str]) -> None:
    from sb3_distill.zoo import register

    register()
    import rl_zoo3.train

    with _as_script("sb3-distill train", quote_teacher_specs(args)), _distill_experiment_manager():
        rl_zoo3.train.train()


def _enjoy(args: list[str]) -> None:
    from sb3_distill.zoo import register

    register()
    from rl_zoo3.enjoy import enjoy

    with _as_script("sb3-distill enjoy", args):
        enjoy()


def _plot(name: str) -> Callable[[list[str]], None]:
    def run(args: list[str]) -> None:
        from sb3_distill.zoo import register

        register()
        import rl_zoo3.plots

        with _as_script(f"sb3-distill {name}", args):
            getattr(rl_zoo3.plots, name)()

    return run


def _demo(args: list[str]) -> int:
    from sb3_distill.demo import main as demo_main

    return demo_main(args)


def _export(args: list[str]) -> int:
    from sb3_distill.export import main as export_main

    return export_main(args)


def _robustness(args: list[str]) -> int:
    from sb3_distill.robustness.cli import main as robustness_main

    return robustness_main(args)


COMMANDS: dict[str, Callable[[list[str]], int | None]] = {
    "train": _train,
    "enjoy": _enjoy,
    "plot_train": _plot("plot_train"),
    "plot_from_file": _plot("plot_from_file"),
    "all_plots": _plot("all_plots"),
    "demo": _demo,
    "export": _export,
    "robustness": _robustness,
}


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run one command.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``)
    :return: the exit status (argparse errors exit with status 2 themselves)
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from sb3_distill import __version__

        print(f"sb3-distill {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if TRUST_FLAG in rest:
        from sb3_distill.teachers.safe_files import TRUST_ENV_VAR

        rest = [arg for arg in rest if arg != TRUST_FLAG]
        os.environ[TRUST_ENV_VAR] = "1"  # the environment, so that rl-zoo3's worker processes trust too
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"{USAGE}\n\nsb3-distill: error: unknown command '{command}'.{hint}", file=sys.stderr)
        return 2
    from sb3_distill.zoo import ConfigError, StorageError

    try:
        status = COMMANDS[command](rest)
    except (ConfigError, StorageError, TeacherError) as error:
        # Bad input: the message says what to fix; a traceback would only hide it.
        print(f"sb3-distill {command}: error: {error}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
