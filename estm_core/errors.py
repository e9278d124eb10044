"""The one exception family the CLI turns into a one-line message instead of a traceback."""


class EstmError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class FileError(EstmError):
    """A problem with one named file; str() reads 'PATH: cause'."""

    def __init__(self, path, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")
