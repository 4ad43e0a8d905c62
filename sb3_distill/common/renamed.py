"""
Keywords renamed since a release: the old name keeps working, with a ``FutureWarning`` naming the new one.

An algorithm lists its renames in ``renamed_keywords`` (old name -> new name, a class attribute of
:class:`~sb3_distill.common.teacher_mixin.TeacherMixin`) and decorates its ``__init__`` with
:func:`accepts_renamed_keywords`. The same table serves ``load(path, old_name=...)``, models saved before the rename
(their zip holds the old attribute name), rl-zoo3 YAML entries and Optuna trials that use the old name.
"""

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Self = TypeVar("Self")


def rename_keywords(owner: str, renamed: Mapping[str, str], kwargs: dict[str, Any], stacklevel: int = 3) -> dict[str, Any]:
    """
    ``kwargs`` with every old keyword name replaced by its new one, with a ``FutureWarning`` for each.

    :param owner: what takes the keywords, for the messages (e.g. ``"PolicyDistill"``)
    :param renamed: old name -> new name
    :param kwargs: the keyword arguments given
    :param stacklevel: where the warning points (3: the line that called the function calling this one)
    :return: a new dict with only new names; raises ``TypeError`` when a keyword is given under both names
    """
    kwargs = dict(kwargs)
    for old, new in renamed.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(
                f"{owner} got both {old}= and {new}=: they are the same setting ({old} is its old name); keep {new}= only."
            )
        warnings.warn(f"{owner}: {old}= is now called {new}=; the old name will be removed.", FutureWarning, stacklevel)
        kwargs[new] = kwargs.pop(old)
    return kwargs


def accepts_renamed_keywords(init: Callable[Concatenate[Self, P], R]) -> Callable[Concatenate[Self, P], R]:
    """
    Decorate an algorithm's ``__init__`` so that it also takes the old names of its ``renamed_keywords``.

    The signature (and what type checkers and rl-zoo3 see) stays the new one.

    :param init: the ``__init__`` to wrap
    :return: the wrapped ``__init__``
    """

    @functools.wraps(init)
    def wrapper(self: Self, *args: P.args, **kwargs: P.kwargs) -> R:
        renamed = getattr(type(self), "renamed_keywords", {})
        return init(self, *args, **rename_keywords(type(self).__name__, renamed, kwargs))  # type: ignore[arg-type]

    return wrapper


__all__ = ["accepts_renamed_keywords", "rename_keywords"]
