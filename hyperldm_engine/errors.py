"""The one exception type that users can cause; the CLI prints its message on one line."""


class HyperLDMError(Exception):
    """A problem with the user's input, parameters, model or output, stated in one sentence.

    ``exit_code`` lets the CLI map classes of problems to distinct exit statuses
    (2: bad input or parameter, 3: bad model bundle, 4: output problem, 5: resource fault).
    """

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(HyperLDMError):
    """An input raster, vector or file is missing, unreadable or unsuitable."""

    exit_code = 2


class BundleError(HyperLDMError):
    """A model bundle is missing, corrupt, incompatible or unsafe."""

    exit_code = 3


class OutputError(HyperLDMError):
    """An output cannot be written (exists, read-only, same as input, disk full)."""

    exit_code = 4


class ResourceError(HyperLDMError):
    """The machine cannot do the work (no GPU, out of memory, file-size limit)."""

    exit_code = 5


class Interrupted(HyperLDMError):  # noqa: N818 (a stop, not an error in the data)
    """The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143)."""

    exit_code = 130
