"""The one exception family the CLI turns into a one-line message instead of a traceback."""


class EstmError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class StoreError(EstmError):
    """A model that cannot be found, read or rebuilt."""


class FileError(EstmError):
    """A problem with one named file; str() reads 'PATH: cause'."""

    def __init__(self, path, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self):  # so that an error raised in a worker process arrives whole (kind included)
        return _rebuild, (type(self), self.__dict__)


class AudioError(FileError):
    """A file that cannot be used as audio. `kind` is one of: missing, not_audio, empty, truncated, corrupt,
    nonfinite, over_full_scale, bad_rate, too_short, silent, unwritable."""

    def __init__(self, path, kind: str, cause: str):
        self.kind = kind
        super().__init__(path, cause)


def _rebuild(kind: type, state: dict) -> FileError:
    error = kind.__new__(kind)
    error.__dict__.update(state)
    Exception.__init__(error, f"{state['path']}: {state['cause']}")
    return error
