"""One migration script: loading a file into a :class:`Script`, and its checksum."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from esmigrate.exceptions import ScriptError
from esmigrate.operations import Operations

#: Revision ids: letters, digits, ``_``, ``.``, ``-``; they appear in document ids and targets.
REVISION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Words with a meaning as targets; no revision may be called so.
RESERVED = frozenset({"head", "heads", "base"})

ScriptFunction = Callable[[Operations], None]


def checksum(data: bytes) -> str:
    """sha256 of a script's bytes with line endings normalised (a CRLF checkout is no edit)."""
    normalised = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(normalised).hexdigest()


@dataclass(frozen=True)
class Script:
    """A loaded migration script: its place in the graph and its two functions."""

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    path: Path
    checksum: str
    upgrade: ScriptFunction = field(repr=False, compare=False)
    downgrade: ScriptFunction | None = field(repr=False, compare=False)
    module: ModuleType = field(repr=False, compare=False)

    @property
    def is_merge(self) -> bool:
        return len(self.down_revisions) > 1

    @property
    def name(self) -> str:
        """The file name, for messages."""
        return self.path.name


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` where ``exc`` was raised (the deepest frame in that file)."""
    line = None
    resolved = str(path.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == resolved or frame.filename == str(path):
            line = frame.lineno
    return line


def load_script(path: Path) -> Script:
    """Import the migration script at ``path``.

    Raises :class:`~esmigrate.exceptions.ScriptError` naming the file (and the line) when it
    does not import or does not define ``revision``, ``down_revision`` and ``upgrade(op)``.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScriptError(
            f"Cannot read the migration script {path}: {exc.strerror}.", path=str(path)
        ) from None
    digest = checksum(data)
    # A fresh module per load: a file edited between two commands in one process is re-read.
    name = f"esmigrate_revision_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for non-.py paths
        raise ScriptError(f"{path} is not a Python file.", path=str(path))
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs so that dataclasses and typing inside the script can find it.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScriptError(
            f"The migration script {path} has a syntax error at line {exc.lineno}: {exc.msg}.",
            path=str(path),
            hint="Fix the syntax in that file; nothing was written to the cluster.",
        ) from None
    except (Exception, SystemExit) as exc:
        line = _line_in(exc, path)
        where = f" (line {line})" if line else ""
        raise ScriptError(
            f"The migration script {path} failed to import{where}: {type(exc).__name__}: {exc}.",
            path=str(path),
            hint="Fix the error in that file (an import it needs, a name it uses); scripts are "
            "imported by every command, so keep their top level free of side effects. "
            "Nothing was written to the cluster.",
        ) from None
    finally:
        sys.modules.pop(name, None)
    return _script_from_module(module, path, digest)


def _script_from_module(module: ModuleType, path: Path, digest: str) -> Script:
    def fail(problem: str, fix: str) -> ScriptError:
        return ScriptError(f"The migration script {path} {problem}.", path=str(path), hint=fix)

    revision: Any = getattr(module, "revision", None)
    if not isinstance(revision, str) or not revision:
        raise fail(
            "does not define `revision`",
            'Add a line such as `revision = "3f2a9c1d7b4e"` (a unique id), as `esmigrate '
            "revision -m ...` writes it.",
        )
    if not REVISION_ID.match(revision) or revision in RESERVED:
        raise fail(
            f"has an invalid revision id {revision!r}",
            "Use letters, digits, '_', '.', '-' (at most 64, not starting with a sign), and "
            "none of the words head, heads, base.",
        )
    if not hasattr(module, "down_revision"):
        raise fail(
            "does not define `down_revision`",
            "Set `down_revision` to the revision this one follows, or to None for the first "
            "revision (a tuple of ids for a merge).",
        )
    raw_down: Any = module.down_revision
    downs: tuple[str, ...]
    if raw_down is None:
        downs = ()
    elif isinstance(raw_down, str):
        downs = (raw_down,)
    elif isinstance(raw_down, (tuple, list)) and all(isinstance(d, str) for d in raw_down):
        downs = tuple(raw_down)
    else:
        raise fail(
            f"has an invalid down_revision {raw_down!r}",
            "Use None, a revision id, or a tuple of revision ids (a merge).",
        )
    if len(set(downs)) != len(downs) or revision in downs:
        raise fail(
            f"lists a revision twice or itself in down_revision {raw_down!r}",
            "Name each parent revision once, never the revision itself.",
        )
    message: Any = getattr(module, "message", None)
    if message is None:
        doc = (module.__doc__ or "").strip()
        message = doc.splitlines()[0] if doc else ""
    if not isinstance(message, str):
        raise fail("has a `message` that is not a string", "Make `message` a string.")
    upgrade = getattr(module, "upgrade", None)
    if not callable(upgrade):
        raise fail(
            "does not define `upgrade(op)`",
            "Add `def upgrade(op): ...` declaring the operations of this revision.",
        )
    downgrade = getattr(module, "downgrade", None)
    if downgrade is not None and not callable(downgrade):
        raise fail("has a `downgrade` that is not a function", "Make it `def downgrade(op): ...`.")
    return Script(
        revision=revision,
        down_revisions=downs,
        message=message,
        path=path,
        checksum=digest,
        upgrade=upgrade,
        downgrade=downgrade,
        module=module,
    )
