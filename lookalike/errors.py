"""The failures a user can act on, as one family: :class:`LookalikeError`.

A ``LookalikeError`` says what went wrong with the user's input, files, data or set-up in words
that need no traceback: the CLI prints it as one line and exits with status 2, the web API answers
it with its error code. Any other exception, a plain ``ValueError`` included, is a bug of ours
and keeps its traceback.

Each concrete error also keeps the built-in base it always had (``MetadataError`` is still a
``ValueError``, ``DownloadError`` a ``RuntimeError``), so code that caught those keeps working.
The concrete classes live next to the code that raises them; these are the shared ones.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """A user-facing failure: bad input, a missing or damaged file, unusable data or set-up."""


class InvalidInputError(LookalikeError, ValueError):
    """An argument, option or configuration value that is out of range or inconsistent."""


class MissingFileError(LookalikeError, FileNotFoundError):
    """A file or folder the user named (or set-up should have made) does not exist."""
