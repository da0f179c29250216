"""Exception types shared across sdar_core.

Every error raised for bad input says what is wrong and how to fix it; these classes only let
callers tell the kinds apart. They subclass ValueError so that generic handlers still catch them.
"""


class SdarError(ValueError):
    """Base class for errors caused by bad input to sdar_core."""


class ConfigError(SdarError):
    """A configuration field or keyword argument has an invalid value."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup used a name that is not registered.

    The message lists the valid names.
    """

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ArtifactError(SdarError):
    """An input artifact (model directory, dataset, index, game folder) is missing or malformed."""


def closest_name_fix(name: str, known: list[str], *, noun: str) -> str:
    """The fix for an unknown `name`: the closest of `known`, else all of them (`noun`: what
    they are, e.g. "keys")."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"its {noun} are {', '.join(known)}"


def error_message(err: BaseException) -> str:
    """One short message for an expected error (the CLI prints it): a pydantic ValidationError as
    `field: what to do` per error, without its links and input echoes; anything else as its
    text."""
    from pydantic import ValidationError

    if not isinstance(err, ValidationError):
        return str(err)
    parts = []
    for item in err.errors(include_url=False, include_input=False):
        where = ".".join(str(x) for x in item["loc"])
        text = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {text}" if where else text)
    return f"invalid {err.title}: " + "; ".join(parts)
