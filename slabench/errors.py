"""The one user-facing error type.

A `SlabenchError` message is a single line that names the offending field and the allowed
values. The CLI prints it without a traceback and exits with status 2.
"""


class SlabenchError(ValueError):
    """Bad user input: a one-line message naming the field and what is allowed."""
