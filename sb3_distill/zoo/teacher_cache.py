"""Teachers loaded once per process: every Optuna trial of a study shares the same frozen teacher."""

import os
import threading
from typing import Any

from stable_baselines3.common.utils import get_device

from sb3_distill.teachers import Teacher, load_teacher

_TEACHERS: dict[tuple[str, str, str], Teacher] = {}
_TEACHERS_LOCK = threading.Lock()


def cached_teacher(spec: Any, device: Any = "auto") -> Teacher:
    """
    ``load_teacher(spec)``, loaded once per process.

    :param spec: any spec :func:`~sb3_distill.load_teacher` takes
    :param device: torch device
    :return: the teacher
    """
    if not isinstance(spec, (str, os.PathLike)):
        return load_teacher(spec, device=device)
    # Zoo ids and relative paths depend on the working directory.
    key = (str(spec), os.getcwd(), str(get_device(device)))
    with _TEACHERS_LOCK:
        if key not in _TEACHERS:
            _TEACHERS[key] = load_teacher(spec, device=device)
        return _TEACHERS[key]


def teacher_specs(value: Any) -> list[Any]:
    """
    :param value: the ``teacher:`` of a hyperparameter entry: one spec or a list of them
    :return: the list of specs
    """
    return list(value) if isinstance(value, (list, tuple)) else [value]
