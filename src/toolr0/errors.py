"""User-facing errors: raised anywhere, printed by the CLI as one line without a traceback."""


class ToolR0Error(Exception):
    """An error whose message is meant for the user (bad config, missing file, missing model)."""


class ConfigError(ToolR0Error):
    """A configuration or spec file is invalid; the message names the offending field."""


class ModelUnavailableError(ToolR0Error):
    """A model cannot be found locally nor obtained offline."""


class ServiceUnreachableError(ModelUnavailableError):
    """A model server did not answer: connection refused or reset, a timeout, or its process is gone. A phase
    that depends on it stops at the first such call (a phase must never train on a silently zeroed reward)."""
