"""The errors readmit raises on purpose.

Every error a user can fix (a bad file, a bad config, a missing column, a corrupt artifact, a
wrong location) is a ``ReadmitInputError``: one message that names the file, the field and the
fix. The CLI turns it into that message on stderr and exit code 2. A failure of the environment
(an S3 endpoint that does not answer, a full disk) is a ``StorageError``: exit code 1.
"""

from __future__ import annotations


class ReadmitError(Exception):
    """Base class for errors readmit raises deliberately: a runtime failure, exit code 1.

    Like every readmit error it can name the location (``source``) and what to do (``fix``).
    """

    exit_code = 1

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.message = message
        self.source = source
        self.fix = fix
        parts = [f"{source}: {message}" if source else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class ReadmitInputError(ReadmitError):
    """Bad input from the user: a file, a config, an artifact, a location. Exit code 2."""

    exit_code = 2


class StorageError(ReadmitError):
    """A location could not be reached or written for a reason outside readmit's input: the
    endpoint is down or too slow, the disk is full. Exit code 1 (rerun once it is fixed)."""


class LocationError(ReadmitInputError):
    """The given location is wrong: no such bucket, no permission, a file where a folder should
    be, a read-only folder. Exit code 2."""


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
