"""The migrations folder: loading every script, the template, and writing new revisions."""

from __future__ import annotations

import json
import re
import string
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from esmigrate.config import Config
from esmigrate.exceptions import RevisionGraphError, ScriptError
from esmigrate.script._graph import RevisionGraph
from esmigrate.script._script import RESERVED, REVISION_ID, Script, load_script

#: File name of a project's own template in the migrations folder (`esmigrate init` writes it).
TEMPLATE_FILE = "script.py.tmpl"

#: The built-in template (string.Template). Variables: ${title} (the message, for a docstring),
#: ${revision}, ${down_revision}, ${message} (Python literals), ${revises}, ${created}.
DEFAULT_TEMPLATE = '''"""${title}

Revision: ${revision_id}
Revises: ${revises}
Created: ${created}
"""

from __future__ import annotations

from esmigrate.operations import Operations

revision = ${revision}
down_revision = ${down_revision}
message = ${message}


def upgrade(op: Operations) -> None:
    """Declare the operations that move the cluster forward (they run after this returns)."""
${upgrades}

def downgrade(op: Operations) -> None:
    """Declare the operations that undo upgrade(); delete this function if it cannot be undone."""
'''


@contextmanager
def _importable(root: Path) -> Iterator[None]:
    # Scripts may import the project's own modules (Document classes), as Alembic's env.py
    # allows with prepend_sys_path.
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _literal(value: object) -> str:
    """A Python literal in the style of the formatter (double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    return repr(value)


class ScriptDirectory:
    """A project's migrations folder."""

    def __init__(self, path: Path, *, root: Path | None = None) -> None:
        self.path = path
        self.root = root if root is not None else path.parent

    @classmethod
    def from_config(cls, config: Config) -> ScriptDirectory:
        return cls(config.migrations_path, root=config.root)

    def _require(self) -> None:
        if not self.path.is_dir():
            raise ScriptError(
                f"The migrations folder {self.path} does not exist.",
                path=str(self.path),
                hint="Run `esmigrate init` to create a project, or set migrations_dir in "
                "esmigrate.toml (or pass --config).",
            )

    def files(self) -> list[Path]:
        """The script files: ``*.py`` not starting with ``_`` or ``.``, by name."""
        self._require()
        return sorted(
            p for p in self.path.glob("*.py") if p.is_file() and not p.name.startswith(("_", "."))
        )

    def load(self) -> RevisionGraph:
        """Import every script and build the graph; errors name the file and the fix."""
        with _importable(self.root):
            scripts = [load_script(p) for p in self.files()]
        return RevisionGraph(scripts, where=str(self.path))

    def template(self) -> str:
        custom = self.path / TEMPLATE_FILE
        return custom.read_text(encoding="utf-8") if custom.is_file() else DEFAULT_TEMPLATE

    def write_revision(
        self,
        message: str,
        *,
        down_revisions: Sequence[str] | None = None,
        rev_id: str | None = None,
        graph: RevisionGraph | None = None,
        upgrades: Sequence[str] = (),
    ) -> Script:
        """Write a new script from the template and return it, loaded.

        ``down_revisions`` defaults to the current head; with several heads the caller must
        name them (a merge) or pick one. ``upgrades`` are source lines for the body of
        ``upgrade()`` (autogenerate), put where the template says ``${upgrades}``.
        """
        graph = graph if graph is not None else self.load()
        if down_revisions is None:
            if len(graph.heads) > 1:
                graph.head()  # raises, naming the heads and the fix (merge)
            down_revisions = list(graph.heads)
        parents = [graph.resolve(r).revision for r in down_revisions]
        revision = rev_id or uuid.uuid4().hex[:12]
        if not REVISION_ID.match(revision) or revision in RESERVED:
            raise ScriptError(
                f"Invalid revision id {revision!r}.",
                path=str(self.path),
                hint="Use letters, digits, '_', '.', '-' (at most 64), not head/heads/base.",
            )
        if revision in graph:
            raise RevisionGraphError(
                f"The revision id {revision!r} is already used by {graph[revision].path}.",
                paths=(str(graph[revision].path),),
                hint="Choose another --rev-id, or leave it out to get a random one.",
            )
        slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "revision"
        target = self.path / f"{revision}_{slug}.py"
        down_literal: object
        down_literal = None if not parents else parents[0] if len(parents) == 1 else tuple(parents)
        template = self.template()
        if upgrades and "${upgrades}" not in template:
            raise ScriptError(
                f"The script template {self.path / TEMPLATE_FILE} has no ${{upgrades}} placeholder "
                "for the generated operations.",
                path=str(self.path / TEMPLATE_FILE),
                hint="Add a line `${upgrades}` inside its upgrade() function.",
            )
        body = "".join(f"    {line}\n" if line else "\n" for line in upgrades)
        text = string.Template(template).safe_substitute(
            upgrades=body,
            title=message.replace('"""', "'''") or "(no message)",
            revision_id=revision,
            revision=_literal(revision),
            down_revision=_literal(down_literal),
            message=_literal(message),
            revises=", ".join(parents) or "(first revision)",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._require()
        with target.open("x", encoding="utf-8") as fh:
            fh.write(text)
        with _importable(self.root):
            try:
                return load_script(target)
            except ScriptError:
                target.unlink()
                raise
