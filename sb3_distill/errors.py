"""Exceptions raised by sb3-distill. Each message says what went wrong and how to fix it."""


class TeacherError(ValueError):
    """Base class for every problem with a teacher: finding it, loading it, or using it."""


class TeacherNotFoundError(TeacherError, FileNotFoundError):
    """A teacher spec that resolves to nothing; the message lists every place that was searched."""


class TeacherLoadError(TeacherError):
    """A file that exists but is not a loadable SB3 model (not a zip, truncated, foreign format...)."""


class HubAccessError(TeacherError):
    """The Hugging Face Hub was needed but is not allowed (remote pickles) or not reachable."""


class IncompatibleTeacherError(TeacherError):
    """A teacher that does not fit the environment or the loss asked of it."""


class NonFiniteError(FloatingPointError):
    """A NaN or inf reached the loss; the message names the input it came from and the env step."""


class ExportError(ValueError):
    """An agent or option that cannot be exported (ONNX, TorchScript, C); the message says what to do."""
