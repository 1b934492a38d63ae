"""Semantic versions for document schemas: ``MAJOR.MINOR.PATCH``, parsed strictly, ordered.

A major bump marks a breaking change (a field changes type or analysis, or goes away: the data
must be rewritten into a new index); a minor bump an additive one (new fields or sub-fields); a
patch bump a change that needs nothing from existing documents (a search analyzer, ignore_above).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from esmigrate.exceptions import InvalidVersion

Bump = Literal["major", "minor", "patch"]

# No leading zeros, no sign, no spaces, no "v", no pre-release or build suffix: two spellings of the
# same version must never compare unequal, and "1.10" must never sort before "1.9".
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?")


@dataclass(frozen=True, order=True)
class SchemaVersion:
    """A schema version. Compare, sort and hash freely; ``str()`` gives ``"1.2.0"``."""

    major: int
    minor: int = 0
    patch: int = 0

    def __post_init__(self) -> None:
        for part in (self.major, self.minor, self.patch):
            if isinstance(part, bool) or not isinstance(part, int) or part < 0:
                raise InvalidVersion(
                    f"Invalid schema version parts ({self.major!r}, {self.minor!r}, {self.patch!r}).",
                    text=(self.major, self.minor, self.patch),
                    hint="Each part must be a non-negative integer.",
                )

    @classmethod
    def parse(cls, text: VersionLike) -> SchemaVersion:
        """Parse ``"MAJOR.MINOR"`` or ``"MAJOR.MINOR.PATCH"`` (``"2.0"`` is ``2.0.0``).

        Raises :class:`~esmigrate.exceptions.InvalidVersion` for anything else: signs, spaces,
        leading zeros, a ``v`` prefix, pre-release suffixes, a bare major number.
        """
        if isinstance(text, SchemaVersion):
            return text
        if not isinstance(text, str):
            raise InvalidVersion(
                f"A schema version must be a string like '2.1.0', not {type(text).__name__} {text!r}.",
                text=text,
                hint="Quote the version: '2.0' or '2.0.0'.",
            )
        match = _VERSION.fullmatch(text)
        if match is None:
            raise InvalidVersion(
                f"Invalid schema version {text!r}.",
                text=text,
                hint="Use MAJOR.MINOR or MAJOR.MINOR.PATCH with plain decimal numbers, e.g. '2.0' or '2.1.3'.",
            )
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bump(self, level: Bump) -> SchemaVersion:
        """The next version at ``level``: ``1.4.2`` → major ``2.0.0``, minor ``1.5.0``, patch ``1.4.3``."""
        if level == "major":
            return SchemaVersion(self.major + 1, 0, 0)
        if level == "minor":
            return SchemaVersion(self.major, self.minor + 1, 0)
        if level == "patch":
            return SchemaVersion(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown bump level {level!r}")

    def bump_level(self, newer: SchemaVersion) -> Bump | None:
        """Which part changed from ``self`` to ``newer`` (None when equal or older)."""
        if newer <= self:
            return None
        if newer.major != self.major:
            return "major"
        if newer.minor != self.minor:
            return "minor"
        return "patch"

    def can_read(self, older: SchemaVersion) -> bool:
        """True when code at this version reads documents written at ``older`` without an upgrade.

        Same major version and not newer than this one: minor and patch releases only add.
        """
        return older.major == self.major and older <= self


#: Anything accepted where a version is expected.
VersionLike: TypeAlias = "SchemaVersion | str"


def version(value: VersionLike) -> SchemaVersion:
    """Shorthand for :meth:`SchemaVersion.parse`."""
    return SchemaVersion.parse(value)
