"""The errors readmit raises on purpose.

Every error a user can fix (a bad file, a bad config, a missing column, a corrupt artifact) is a
``ReadmitInputError``: one message that names the file, the field and the fix. The CLI turns it
into that message on stderr and exit code 2.
"""

from __future__ import annotations


class ReadmitError(Exception):
    """Base class for errors readmit raises deliberately."""

    exit_code = 1


class ReadmitInputError(ReadmitError):
    """Bad input from the user: a file, a config, an artifact. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source = source
        self.fix = fix
        parts = [f"{source}: {message}" if source else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class ConfigError(ReadmitInputError):
    """The configuration is invalid; ``problems`` lists every problem with its JSON path."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{listing}",
            source=source,
            fix="correct the fields listed above (`readmit config schema` prints what is allowed).",
        )


class ArtifactError(ReadmitInputError):
    """A stored model or metadata file is missing, truncated or does not match its checksum."""
