"""Errors that the CLI turns into a one-line message and a non-zero exit code."""


class NewsrecError(Exception):
    """A failure whose message is meant for the user (bad input, unreachable service)."""


class ConfigError(NewsrecError):
    """The environment or parameters are wrong; nothing was touched."""


class DataError(NewsrecError):
    """Input data is malformed; the operation was rolled back."""


class GateFailed(NewsrecError):
    """A critical gate check failed: nothing downstream may run. The message is one line (the
    failing checks and the report); the full verdict is logged and stored in ops."""
