"""
The tuning loop of ``sb3-distill train -optimize``: rl-zoo3's, made safe against workers that die.

A worker killed with SIGKILL leaves its trial ``RUNNING`` for ever: nothing in the trial says that no one works on
it any more. Two ways to find out, and both end the same way (the trial is failed and a ``WAITING`` copy with the
same parameters is queued, ``system_attrs["failed_trial"]`` naming the original, at most
:data:`~sb3_distill.zoo.storage.MAX_RETRY` times; the next trial any worker starts is that copy):

* a database storage: Optuna's heartbeat (a trial silent for two intervals is stale);
* a journal file, which has no heartbeat: every trial records its worker (host, process id and the process's start
  time, so a recycled pid is not taken for the worker); a worker on the same host whose process is gone is dead.
  A trial with no worker recorded (its worker died between Optuna's ``ask()`` and the objective's first line) is
  taken for dead after :data:`ORPHAN_AFTER` seconds.

What a worker killed at any moment leaves in a journal file, then: the trial it was running, ``RUNNING`` with its
parameters; the empty ``PATH.flock`` (its lock was released by the kernel,
:class:`~sb3_distill.zoo.storage.FlockJournalLock`); at worst, if it died inside a ``write()`` or the disk was full,
half a log line, removed by the next :func:`~sb3_distill.zoo.storage.open_storage`. Every live worker of the study
checks before each trial and while it waits for the last trials of others, and so does the next
``sb3-distill train -optimize`` on that study: a study whose workers were all killed is completed by running the
same command again.
"""

import os
import pickle
import socket
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from sb3_distill.common.workers import process_is_gone
from sb3_distill.zoo.storage import WORKER_ATTRS, RetryDeadWorkerTrial, heartbeat_interval

WORKER_ATTR, WORKER_START_ATTR = WORKER_ATTRS
#: Seconds after which a running trial with no worker recorded is taken for a dead worker's.
ORPHAN_AFTER = 30
#: rl-zoo3 counts running trials too, so that N workers do not run N - 1 trials too many.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)


def _process_stat(pid: int) -> tuple[str, str] | None:
    """State letter and start time (clock ticks since boot) of a process, from ``/proc``; ``None`` where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def record_worker(trial: optuna.Trial) -> None:
    """
    Record in the trial which process runs it, so that other workers can tell when that process is gone.

    :param trial: the trial this process starts
    """
    trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
    stat = _process_stat(os.getpid())
    if stat is not None:
        trial.set_user_attr(WORKER_START_ATTR, stat[1])


def is_dead_worker(trial: FrozenTrial) -> bool | None:
    """
    Whether the worker of a trial of a journal study is gone (see the module's docstring).

    :param trial: a running trial
    :return: whether its worker is gone (``None``: cannot tell, e.g. a worker on another machine)
    """
    worker = trial.user_attrs.get(WORKER_ATTR)
    if worker is None:
        started = trial.datetime_start
        return started is not None and datetime.now() - started > timedelta(seconds=ORPHAN_AFTER)
    host, _, pid_text = str(worker).rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if process_is_gone(pid):
        return True
    stat = _process_stat(pid)
    if stat is None:
        return False  # no /proc: a live pid is all we know
    state, start = stat
    recorded_start = trial.user_attrs.get(WORKER_START_ATTR)
    # A killed worker whose parent has not reaped it yet is a zombie; a pid may also have been given to a new process.
    return state in ("Z", "X") or (recorded_start is not None and start != recorded_start)


def recover_dead_workers(study: optuna.Study, heartbeat: bool) -> list[int]:
    """
    Fail the running trials of dead workers and queue their retries.

    Several workers may do this at once: only the one whose ``FAIL`` lands queues the retry.

    :param study: the study
    :param heartbeat: whether its storage has Optuna's heartbeat (:func:`~sb3_distill.zoo.storage.has_heartbeat`):
        then Optuna's stale-trial check; else :func:`is_dead_worker`
    :return: the numbers of the trials failed here by :func:`is_dead_worker`
    """
    if heartbeat:
        # Optuna runs this before each trial too; here it also runs while a worker waits for the last trials.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return []
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_dead_worker(trial):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, UpdateFinishedTrialError):
            continue  # another worker failed it first and queued its retry
        RetryDeadWorkerTrial()(study, trial)
        recovered.append(trial.number)
    if recovered:
        print(f"Trials {recovered} belonged to workers that died: failed, and queued again with the same parameters.")
    return recovered


def _recover_after(study: optuna.Study, _: FrozenTrial) -> None:
    """A study callback for journal studies: after each trial, recover dead workers' trials (the next is their retry)."""
    recover_dead_workers(study, heartbeat=False)


class _TakenForDeadGuard:
    """
    The objective, checking at its end that its trial is still running.

    A worker stalled long enough (suspended, starved of CPU) misses its heartbeats; another worker then takes it for
    dead, fails its trial and queues a retry. When it wakes up, Optuna cannot record its result and raises.
    """

    def __init__(self, study: optuna.Study, objective: Callable[[optuna.Trial], float]) -> None:
        self.study, self.objective = study, objective
        self.taken: list[str] = []

    def __call__(self, trial: optuna.Trial) -> float:
        value = self.objective(trial)
        state = next(t.state for t in self.study.get_trials(deepcopy=False) if t.number == trial.number)
        if state != TrialState.RUNNING:
            self.taken.append(f"Trial {trial.number} was failed by another worker, which took this one for dead.")
            raise RuntimeError(self.taken[-1])
        return value


def optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    heartbeat: bool,
    n_trials: int,
    max_total_trials: int | None,
    n_jobs: int = 1,
) -> None:
    """
    rl-zoo3's ``study.optimize`` call (``--n-trials`` for this worker, or ``--max-total-trials`` for the study), with
    the trials of dead workers recovered before every trial and waited for at the end.

    With ``--max-total-trials`` a worker leaves once the study has that many finished trials; while the last ones
    run elsewhere it stays, if it can tell whether their workers die, to run their retries.

    :param study: the study
    :param objective: the objective
    :param heartbeat: whether the study's storage has Optuna's heartbeat
    :param n_trials: trials for this worker (without ``max_total_trials``)
    :param max_total_trials: finished trials for the whole study (``None``: use ``n_trials``)
    :param n_jobs: threads
    """
    if max_total_trials is None:
        recover_dead_workers(study, heartbeat)
        callbacks = [] if heartbeat else [_recover_after]
        study.optimize(objective, n_jobs=n_jobs, n_trials=n_trials, callbacks=callbacks, gc_after_trial=True)
        return
    poll = min(heartbeat_interval(), 2) if heartbeat else 1
    while True:
        recover_dead_workers(study, heartbeat)
        trials = study.get_trials(deepcopy=False)
        finished = sum(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in trials)
        running = [trial for trial in trials if trial.state == TrialState.RUNNING]
        waiting = sum(trial.state == TrialState.WAITING for trial in trials)
        if finished >= max_total_trials:
            return
        if finished + len(running) >= max_total_trials and waiting == 0:
            if not heartbeat and any(is_dead_worker(trial) is None for trial in running):
                return  # their workers finish them (on another machine, a dead one cannot be told from a slow one)
            time.sleep(poll)
            continue
        guarded = _TakenForDeadGuard(study, objective)
        try:
            study.optimize(
                guarded,
                n_jobs=n_jobs,
                n_trials=n_jobs,
                callbacks=[MaxTrialsCallback(max_total_trials, states=COUNTED_STATES)],
                gc_after_trial=True,
            )
        except Exception as error:
            if not guarded.taken:
                raise
            # Optuna fails to tell the result of a trial failed meanwhile (a ValueError, or its own "Should not
            # reach" assertion): the trial runs again as its retry, so this worker drops its result and goes on.
            warnings.warn(f"{guarded.taken[0]} Its result is dropped ({type(error).__name__}: {error}).")


def write_report(study: optuna.Study, log_path: str, plots: bool, verbose: int) -> None:
    """
    rl-zoo3's report: the best trial on stdout, ``LOG_PATH.csv`` and ``LOG_PATH.pkl``, optional plots; also for a
    study with no completed trial (rl-zoo3 raises there).

    :param study: the study
    :param log_path: the report's path without extension
    :param plots: show Optuna's optimisation-history and importance plots
    :param verbose: print where the report goes
    """
    print("Number of finished trials: ", len(study.trials))
    completed = study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    if completed:
        trial = study.best_trial
        print("Best trial:")
        print("Value: ", trial.value)
        print("Params: ")
        for key, value in trial.params.items():
            print(f"    {key}: {value}")
        print("User Attributes: ")
        for key, value in trial.user_attrs.items():
            print(f"    {key}: {value}")
    if verbose:
        print(f"Writing report to {log_path}")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    study.trials_dataframe().to_csv(f"{log_path}.csv")
    with open(f"{log_path}.pkl", "wb+") as file:
        pickle.dump(study, file)
    if not plots or not completed:
        return
    try:
        from optuna.visualization import plot_optimization_history, plot_param_importances

        plot_optimization_history(study).show()
        plot_param_importances(study).show()
    except (ValueError, ImportError, RuntimeError):
        pass
