"""User-facing errors: raised anywhere, printed by the CLI as one line without a traceback."""


class ToolR0Error(Exception):
    """An error whose message is meant for the user (bad config, missing file, missing model)."""


class ConfigError(ToolR0Error):
    """A configuration or spec file is invalid; the message names the offending field."""


class ModelUnavailableError(ToolR0Error):
    """A model cannot be found locally nor obtained offline."""
