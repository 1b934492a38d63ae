"""Schema history per document type, and validation of an upgrade between two versions.

The guide's ``VersionManager``, correct: the path is computed from the version asked for (not
the "current" one), patch versions count, "breaking" is decided by the typed mapping changes (not
a free-text label), a release that needs its data rewritten must say how (a migration, or a path
in the upgrade graph), and a change that rewrites data must have a rollback procedure.

::

    history = SchemaHistory.from_schemas(
        "blog_post",
        [("1.0", BlogPostV1), ("2.0", BlogPostV2), ("3.0", BlogPostV3)],
        upgrades=BlogPostV3.upgrade_graph(),
        rollbacks={"3.0": "swap the alias back to blog_posts_v2"},
    )
    report = history.validate_upgrade_path("1.0", "3.0")
    report.valid, report.to_dict()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from esmigrate.exceptions import NoUpgradePath, SchemaError
from esmigrate.schema.diff import Change, Compatibility, diff_mappings
from esmigrate.schema.documents import Upgrades
from esmigrate.schema.versions import Bump, SchemaVersion, VersionLike

_BUMP_RANK: dict[Bump | None, int] = {None: 0, "patch": 1, "minor": 2, "major": 3}


@dataclass(frozen=True)
class SchemaRelease:
    """One version of a document type's schema and the changes that led to it."""

    version: SchemaVersion
    changes: tuple[Change, ...] = ()
    #: How existing data gets to this version (a revision id, a description); None: not said.
    migration: str | None = None
    #: How to go back if this release fails; None: not said.
    rollback: str | None = None
    description: str = ""

    @property
    def compatibility(self) -> Compatibility | None:
        if not self.changes:
            return None
        return max((c.compatibility for c in self.changes), key=lambda c: c.rank)

    @property
    def rewrites_data(self) -> bool:
        """True when existing documents must be rewritten (backfill or reindex)."""
        return self.compatibility in (Compatibility.NEEDS_BACKFILL, Compatibility.NEEDS_REINDEX)

    @property
    def implied_bump(self) -> Bump | None:
        if not self.changes:
            return None
        if self.compatibility == Compatibility.NEEDS_REINDEX:
            return "major"
        if any(c.kind.value in ("field_added", "subfield_added") for c in self.changes):
            return "minor"
        return "patch"


@dataclass(frozen=True)
class UpgradeValidation:
    """What :meth:`SchemaHistory.validate_upgrade_path` found. ``valid`` when no list has items."""

    doc_type: str
    from_version: SchemaVersion
    to_version: SchemaVersion
    releases: tuple[SchemaRelease, ...]
    breaking_without_migration: tuple[tuple[SchemaVersion, Change], ...] = ()
    gaps: tuple[str, ...] = ()
    missing_rollbacks: tuple[SchemaVersion, ...] = ()
    bump_too_small: tuple[tuple[SchemaVersion, Bump | None, Bump | None], ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not (
            self.breaking_without_migration
            or self.gaps
            or self.missing_rollbacks
            or self.bump_too_small
        )

    @property
    def requires_migration(self) -> bool:
        return any(r.rewrites_data for r in self.releases)

    @property
    def breaking_changes(self) -> tuple[tuple[SchemaVersion, Change], ...]:
        return tuple(
            (r.version, c)
            for r in self.releases
            for c in r.changes
            if c.compatibility == Compatibility.NEEDS_REINDEX
        )

    def problems(self) -> list[str]:
        """Every issue as one sentence."""
        out = list(self.gaps)
        out += [
            f"{v}: {c.describe()} rewrites data but the release names no migration"
            for v, c in self.breaking_without_migration
        ]
        out += [
            f"{v}: the release rewrites data but has no rollback procedure"
            for v in self.missing_rollbacks
        ]
        out += [
            f"{v}: the changes need a {implied} version bump, but the release is a {actual} bump"
            for v, implied, actual in self.bump_too_small
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_type": self.doc_type,
            "from_version": str(self.from_version),
            "to_version": str(self.to_version),
            "valid": self.valid,
            "requires_migration": self.requires_migration,
            "releases": [str(r.version) for r in self.releases],
            "breaking_changes": [
                {"version": str(v), **c.to_dict()} for v, c in self.breaking_changes
            ],
            "problems": self.problems(),
        }


class SchemaHistory:
    """The releases of one document type's schema, oldest first."""

    def __init__(
        self,
        doc_type: str,
        releases: Iterable[SchemaRelease] = (),
        *,
        upgrades: Upgrades | None = None,
    ) -> None:
        self.doc_type = doc_type
        self.upgrades = upgrades
        self._releases: dict[SchemaVersion, SchemaRelease] = {}
        for release in releases:
            self.add(release)

    def add(self, release: SchemaRelease) -> SchemaRelease:
        if release.version in self._releases:
            raise SchemaError(f"{self.doc_type} already has a release {release.version}.")
        self._releases[release.version] = release
        return release

    def release(
        self,
        version: VersionLike,
        changes: Iterable[Change] = (),
        *,
        migration: str | None = None,
        rollback: str | None = None,
        description: str = "",
    ) -> SchemaRelease:
        """Record a release."""
        return self.add(
            SchemaRelease(
                SchemaVersion.parse(version), tuple(changes), migration, rollback, description
            )
        )

    @classmethod
    def from_schemas(
        cls,
        doc_type: str,
        schemas: Sequence[tuple[VersionLike, Any]],
        *,
        upgrades: Upgrades | None = None,
        migrations: Mapping[str, str] | None = None,
        rollbacks: Mapping[str, str] | None = None,
    ) -> SchemaHistory:
        """Build the history from successive schemas (anything ``mapping_of`` accepts): each
        release's changes are the mapping diff from the previous one. ``migrations`` and
        ``rollbacks`` are keyed by version string."""
        migrations = {str(SchemaVersion.parse(k)): v for k, v in (migrations or {}).items()}
        rollbacks = {str(SchemaVersion.parse(k)): v for k, v in (rollbacks or {}).items()}
        ordered = sorted(((SchemaVersion.parse(v), s) for v, s in schemas), key=lambda p: p[0])
        history = cls(doc_type, upgrades=upgrades)
        previous: Any = None
        for version, schema in ordered:
            changes = () if previous is None else diff_mappings(previous, schema).changes
            history.add(
                SchemaRelease(
                    version,
                    tuple(changes),
                    migrations.get(str(version)),
                    rollbacks.get(str(version)),
                )
            )
            previous = schema
        return history

    @property
    def releases(self) -> list[SchemaRelease]:
        return [self._releases[v] for v in sorted(self._releases)]

    @property
    def current(self) -> SchemaVersion | None:
        return max(self._releases) if self._releases else None

    def path(self, from_version: VersionLike, to_version: VersionLike) -> list[SchemaRelease]:
        """The releases after ``from_version`` up to and including ``to_version``."""
        low, high = SchemaVersion.parse(from_version), SchemaVersion.parse(to_version)
        return [r for r in self.releases if low < r.version <= high]

    def validate_upgrade_path(
        self, from_version: VersionLike, to_version: VersionLike | None = None
    ) -> UpgradeValidation:
        """Check that going from ``from_version`` to ``to_version`` (default: the latest) is safe.

        Reports breaking changes without a migration, gaps (unknown versions, consecutive
        releases the upgrade graph cannot join, a downgrade) and missing rollback procedures,
        and releases whose version bump is smaller than their changes imply.
        """
        low = SchemaVersion.parse(from_version)
        if to_version is None:
            if self.current is None:
                raise SchemaError(f"{self.doc_type} has no releases.")
            high = self.current
        else:
            high = SchemaVersion.parse(to_version)
        gaps: list[str] = []
        for end in (low, high):
            if end not in self._releases:
                gaps.append(f"version {end} is not in the history of {self.doc_type}")
        if high < low:
            gaps.append(f"{low} → {high} is a downgrade; the history only goes forward")
        releases = self.path(low, high)
        breaking: list[tuple[SchemaVersion, Change]] = []
        rollbacks: list[SchemaVersion] = []
        bumps: list[tuple[SchemaVersion, Bump | None, Bump | None]] = []
        previous = max((v for v in self._releases if v <= low), default=None)
        for release in releases:
            covered = release.migration is not None
            if self.upgrades is not None and previous is not None:
                try:
                    self.upgrades.path(previous, release.version)
                    covered = True
                except NoUpgradePath:
                    gaps.append(
                        f"no upgrade step leads from {previous} to {release.version} "
                        f"in the {self.upgrades.name} upgrade graph"
                    )
            if release.rewrites_data and not covered:
                breaking += [
                    (release.version, c)
                    for c in release.changes
                    if c.compatibility != Compatibility.IN_PLACE
                ]
            if release.rewrites_data and not release.rollback:
                rollbacks.append(release.version)
            if previous is not None:
                actual = previous.bump_level(release.version)
                implied = release.implied_bump
                if _BUMP_RANK[actual] < _BUMP_RANK[implied]:
                    bumps.append((release.version, implied, actual))
            previous = release.version
        return UpgradeValidation(
            self.doc_type,
            low,
            high,
            tuple(releases),
            tuple(breaking),
            tuple(gaps),
            tuple(rollbacks),
            tuple(bumps),
        )
