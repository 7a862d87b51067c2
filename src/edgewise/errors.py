"""The one exception type for user mistakes.

The CLI prints its message as a single line and exits non-zero; `--debug` shows the
traceback. Messages say what was expected, what was received, and how to fix it.
"""

from collections.abc import Iterable


class EdgewiseError(Exception):
    """A problem with the user's input: a model name, a file, an option, a model's forward."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> EdgewiseError:
    """'unknown KIND 'x' (did you mean 'y'?): known KINDs are ...', the closest hinted."""
    import difflib

    names = list(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return EdgewiseError(f"unknown {kind} '{name}'{hint}: known {kind}s are {', '.join(names)}")
