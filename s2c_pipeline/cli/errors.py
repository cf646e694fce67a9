"""The two error kinds a verb raises; ``main`` turns them into exit codes 2 and 1."""

EXIT_OK, EXIT_BAD_DATA, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad combination of arguments (exit code 2)."""


class DataError(Exception):
    """Bad input data (exit code 1); the message is one line naming the file and the cause."""
