"""The one exception type for user mistakes.

The CLI prints its message as a single line and exits non-zero; `--debug` shows the
traceback. Messages say what was expected, what was received, and how to fix it.
"""


class EdgewiseError(Exception):
    """A problem with the user's input: a model name, a file, an option, a model's forward."""
