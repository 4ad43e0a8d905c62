"""
Keywords and keyword values renamed since a release: the old spelling keeps working, with a ``FutureWarning`` naming
the new one.

An algorithm lists its renames in ``renamed_keywords`` (old name -> new name) and ``renamed_values`` (keyword ->
{old value -> new value}; a value ``"old_<x>"`` becomes ``"new_<x>"``), class attributes of
:class:`~sb3_distill.common.teacher_mixin.TeacherMixin`, and decorates its ``__init__`` with
:func:`accepts_renamed_keywords`. The same tables serve ``load(path, old_name=...)``, models saved before the rename
(their zip holds the old attribute name or value), rl-zoo3 YAML entries (they reach ``__init__``) and Optuna trials
(the converters call :func:`rename_value`).
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


def rename_value(owner: str, keyword: str, value: Any, renamed: Mapping[str, str], stacklevel: int = 3) -> Any:
    """
    ``value`` in its new spelling, with a ``FutureWarning`` if it was an old one.

    :param owner: what takes the value, for the message (e.g. ``"DistillPPO"``)
    :param keyword: the keyword the value is given to, for the message
    :param value: the value given (only strings are renamed)
    :param renamed: old value -> new value; ``"old_<x>"`` becomes ``"new_<x>"`` (a key ``"old_"``, mapped to ``"new_"``,
        renames only the values ``"old_<x>"``)
    :param stacklevel: where the warning points
    :return: the new spelling, or ``value`` unchanged
    """
    if not isinstance(value, str):
        return value
    name, separator, rest = value.partition("_")
    if value in renamed:
        new = renamed[value]
    elif separator and name in renamed:
        new = f"{renamed[name]}_{rest}"
    elif separator and f"{name}_" in renamed:  # a key "old_" renames "old_<x>" only, not "old" itself
        new = f"{renamed[f'{name}_']}{rest}"
    else:
        return value
    warnings.warn(
        f"{owner}: {keyword}={value!r} is now spelled {keyword}={new!r}; the old spelling will be removed.",
        FutureWarning,
        stacklevel,
    )
    return new


def rename_values(
    owner: str, renamed: Mapping[str, Mapping[str, str]], kwargs: dict[str, Any], stacklevel: int = 3
) -> dict[str, Any]:
    """
    ``kwargs`` with every old spelling of a value replaced by its new one (:func:`rename_value`).

    :param owner: what takes the keywords, for the messages
    :param renamed: keyword -> {old value -> new value}
    :param kwargs: the keyword arguments given
    :param stacklevel: where the warnings point
    :return: a new dict
    """
    kwargs = dict(kwargs)
    for keyword, values in renamed.items():
        if keyword in kwargs:
            kwargs[keyword] = rename_value(owner, keyword, kwargs[keyword], values, stacklevel + 1)
    return kwargs


def accepts_renamed_keywords(init: Callable[Concatenate[Self, P], R]) -> Callable[Concatenate[Self, P], R]:
    """
    Decorate an algorithm's ``__init__`` so that it also takes the old names of its ``renamed_keywords`` and the old
    spellings of its ``renamed_values``.

    The signature (and what type checkers and rl-zoo3 see) stays the new one.

    :param init: the ``__init__`` to wrap
    :return: the wrapped ``__init__``
    """

    @functools.wraps(init)
    def wrapper(self: Self, *args: P.args, **kwargs: P.kwargs) -> R:
        owner = type(self).__name__
        kwargs = rename_keywords(owner, getattr(type(self), "renamed_keywords", {}), kwargs)  # type: ignore[assignment]
        kwargs = rename_values(owner, getattr(type(self), "renamed_values", {}), kwargs)  # type: ignore[assignment]
        return init(self, *args, **kwargs)

    return wrapper


__all__ = ["accepts_renamed_keywords", "rename_keywords", "rename_value", "rename_values"]
