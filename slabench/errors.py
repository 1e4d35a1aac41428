"""The one user-facing error type.

A `SlabenchError` message is a single line that names the offending field and the allowed
values. The CLI prints it without a traceback and exits with status 2.
"""


class SlabenchError(ValueError):
    """Bad user input: a one-line message naming the field and what is allowed."""


def one_line(e: BaseException) -> str:
    """An exception as one line for an error message: its type and its message's first line (the
    type alone for an empty message, as MemoryError's often is)."""
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0] if text else type(e).__name__
