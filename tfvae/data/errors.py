"""The error of a data source that cannot be read."""


class DataError(ValueError):
    """A data source that cannot be read: missing, not downloaded, corrupt, truncated, or not images."""
