"""Development sessions: ``nox`` runs everything CI guards; ``nox -s bench`` measures.

``nox`` runs the default sessions one after the other; ``nox -s ci`` (the README's test command, and what
``.ci/run`` runs) runs the same sessions two at a time and ends with one line of totals:

- ``tests``: the suite on every Python 3.10-3.13 found on this machine (pyenv's versions included), with
  the newest release of every dependency: no upper pins, upgraded on every run, which is what
  ``pip install magic-hour-async`` gives users today. Tests marked ``slow`` (processes killed mid-batch,
  hundreds of renders) run on the newest Python only; the other Pythons run the rest.
- ``tests_oldest``: the same suite with the oldest versions ``pyproject.toml`` declares (uv's
  ``--resolution lowest-direct``, for the runtime and the test dependencies), on the oldest Python found. The
  session fails when what it installed is not exactly those lower bounds, so a bound cannot drift untested.
- ``schemathesis``: an independent fuzzer against the emulator with the pinned spec (issue 18's check).
- ``compat``: the official ``magic-hour`` 0.90.0 installed beside this package; its ``client.v1`` surface and
  its own README samples must work here too.
- ``lint`` (ruff), ``typecheck`` (mypy --strict and pyright), ``gen_check`` (generated files are current; the
  spec they come from must match its pin under ``CI=true``).

Virtualenvs are made and filled by uv (``pip install 'nox[uv]'``): resolving four fresh environments with pip
costs minutes, with uv seconds.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import nox
from nox.command import CommandFailed
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: nox depends on tomli there
    import tomli as tomllib

nox.options.sessions = ["tests", "tests_oldest", "schemathesis", "compat", "lint", "typecheck", "gen_check"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
TEST_DEPS = ("-e", ".[test]")
# `nox -s ci` runs the default sessions this many at a time: the suite spends most of its time waiting on
# loopback sockets and subprocesses (about 40 s of CPU in 80 s), so two share a 2-core machine well.
CI_WORKERS = 2
# The versions each test session prints before running, to read in CI logs.
REPORTED = ("aiohttp", "attrs", "cattrs", "anyio", "pytest", "pytest-asyncio", "aioresponses", "jsonschema")
PRISM_VERSION = "5.16.1"  # the spec mock server of tests/test_spec_conformance.py (npm)
PRISM_PREFIX = os.path.abspath(os.path.join(".nox", "prism"))


def _add_pyenv_versions_to_path() -> None:
    # pyenv installs interpreters side by side but only puts the global one on PATH.
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    bins = sorted(
        {d for root in roots if root for d in glob.glob(os.path.join(root, "versions", "3.1*", "bin"))}
    )
    if bins:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *bins])


def _installed_pythons() -> list[str]:
    _add_pyenv_versions_to_path()
    found = [v for v in SUPPORTED if shutil.which(f"python{v}")]
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    return found or ([current] if current in SUPPORTED else [])


PYTHONS = _installed_pythons()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite (unit, loopback end-to-end on the emulator, spec conformance) with the newest deps."""
    session.install("--upgrade", *TEST_DEPS)
    _report_versions(session)
    _install_prism(session)
    # The slow end-to-end tests (processes killed mid-batch, hundreds of renders) run on the newest Python
    # and in tests_oldest; the other Pythons run everything else, which keeps `nox -s ci` near 10 minutes.
    slow = [] if session.python == PYTHONS[-1] or session.posargs else ["-m", "not slow"]
    session.run("python", "-m", "pytest", *slow, *session.posargs)


@nox.session(python=PYTHONS[:1] or None)
def tests_oldest(session: nox.Session) -> None:
    """The whole test suite with the lowest versions pyproject.toml declares, on the oldest Python found."""
    session.install("--upgrade", "--resolution", "lowest-direct", *TEST_DEPS)
    _report_versions(session)
    floors = [f"{name}=={version}" for name, version in _declared_floors().items()]
    session.run("python", "-c", _CHECK_FLOORS, *floors, silent=True)
    _install_prism(session)
    session.run("python", "-m", "pytest", *session.posargs)


def _declared_floors() -> dict[str, str]:
    """``{distribution: lower bound}`` for the runtime and test dependencies in pyproject.toml."""
    with open("pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    floors: dict[str, str] = {}
    for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        requirement = Requirement(line)
        bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(bounds) != 1:
            raise ValueError(f"{line!r}: every dependency needs exactly one lower bound (>=)")
        floors[requirement.name] = bounds[0]
    return floors


_CHECK_FLOORS = """
import sys
from importlib.metadata import version
from packaging.version import Version

wrong = [
    f"{name} {version(name)} (declared >={floor})"
    for name, floor in (arg.split("==") for arg in sys.argv[1:])
    if Version(version(name)) != Version(floor)
]
if wrong:
    sys.exit("tests_oldest did not install the declared lower bounds: " + ", ".join(wrong))
"""


def _report_versions(session: nox.Session) -> None:
    code = (
        "import sys; from importlib.metadata import version; "
        "print(f'python {sys.version.split()[0]}: ' + ', '.join(f'{n} {version(n)}' for n in sys.argv[1:]))"
    )
    session.run("python", "-c", code, *REPORTED)


def _install_prism(session: nox.Session) -> None:
    """Install the Prism mock server for tests/test_spec_conformance.py (npm, cached); skipped without npm."""
    npm = shutil.which("npm")
    if npm is None:
        session.log("npm not found: the spec-conformance tests will be skipped")
        return
    package = os.path.join(PRISM_PREFIX, "node_modules", "@stainless-api", "prism-cli", "package.json")
    try:
        with open(package) as file:
            installed = json.load(file).get("version")
    except (OSError, ValueError):
        installed = None
    if installed != PRISM_VERSION:
        spec = f"@stainless-api/prism-cli@{PRISM_VERSION}"
        args = ("install", "--prefix", PRISM_PREFIX, "--save-exact", "--no-audit", "--no-fund", spec)
        session.run(npm, *args, external=True)
    session.env["MAGIC_HOUR_PRISM"] = os.path.join(PRISM_PREFIX, "node_modules", ".bin", "prism")


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """What CI runs: every default session, two at a time, each one's output printed whole when it ends."""
    _install_prism(session)  # once, before two sessions could install it into the same prefix side by side
    names = [
        *(f"tests-{version}" for version in reversed(PYTHONS)),  # the newest first: it runs the slow tests
        "tests_oldest",
        "schemathesis",
        "compat",
        "typecheck",
        "lint",
        "gen_check",
    ]
    names = session.posargs or names  # `nox -s ci -- lint typecheck`: the same run for some sessions only
    lock, results = threading.Lock(), {}

    def run(name: str) -> None:
        started = time.monotonic()
        command = [sys.executable, "-m", "nox", "-s", name]
        output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        child = subprocess.run(command, check=False, **output)
        elapsed = time.monotonic() - started
        with lock:
            print(f"\n===== {name}: exit {child.returncode} after {elapsed:.0f} s =====", flush=True)
            print(child.stdout, end="", flush=True)
            results[name] = (child.returncode, _pytest_counts(child.stdout))

    with ThreadPoolExecutor(CI_WORKERS) as pool:
        list(pool.map(run, names))
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for name in names:
        code, counts = results[name]
        print(f"{name}: exit {code}" + "".join(f", {n} {word}" for word, n in counts.items()))
        for word, n in counts.items():
            totals["failed" if word.startswith("error") else word] += n
    failed = [name for name in names if results[name][0] != 0]
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    if failed:
        session.error(f"failed: {', '.join(failed)}")


def _pytest_counts(output: str) -> dict[str, int]:
    """The counts in the last pytest summary line of ``output`` (empty when pytest did not run)."""
    summary = re.compile(r"\b\d+ (passed|failed|errors?)\b.* in [\d.]+s\b")  # not ruff's "Found 3 errors."
    lines = [line for line in output.splitlines() if summary.search(line)]
    if not lines:
        return {}
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", lines[-1])}


@nox.session(python=PYTHONS[-1:] or None)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[:1] or None)
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright (strict) on the package; both run, so one run reports both tools' errors."""
    session.install(*TEST_DEPS, "mypy", "pyright")
    failed = []
    for tool in ("mypy", "pyright"):
        try:
            session.run(tool)
        except CommandFailed:
            failed.append(tool)
    if failed:
        session.error(f"{' and '.join(failed)} failed")


@nox.session(python=PYTHONS[-1:] or None)
def gen(session: nox.Session) -> None:
    """Regenerate the blocking facade (and the API surface, when the spec is present)."""
    session.install("-e", ".")
    session.run("python", "tools/generate_api.py")  # first: the sync facade mirrors its classes
    session.run("python", "tools/gen_sync.py")
    session.run("python", "tools/generate_rules.py")


@nox.session(python=PYTHONS[-1:] or None)
def gen_check(session: nox.Session) -> None:
    """Fail when generated files differ from what the generators would write."""
    session.install("-e", ".")
    session.run("python", "tools/generate_api.py", "--check")
    session.run("python", "tools/gen_sync.py", "--check")
    session.run("python", "tools/generate_rules.py", "--check")


@nox.session(python=PYTHONS[-1:] or None)
def schemathesis(session: nox.Session) -> None:
    """Fuzz the emulator with the pinned spec (tests/test_schemathesis.py; under a minute)."""
    session.install(*TEST_DEPS, "schemathesis>=4.32,<5")
    session.run("python", "-m", "pytest", "tests/test_schemathesis.py", *session.posargs)


@nox.session(python=PYTHONS[-1:] or None)
def bench(session: nox.Session) -> None:
    """Benchmarks against raw aiohttp and the official SDK (installed here only)."""
    session.install(*TEST_DEPS, "magic-hour==0.90.0")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHONS[-1:] or None)
def demo(session: nox.Session) -> None:
    """The README's first command in a fresh virtualenv: install, then the offline demo in a temporary dir."""
    session.install(".")
    tmp = session.create_tmp()
    session.chdir(tmp)
    session.run("magic-hour-async", "demo", env={"MAGIC_HOUR_API_KEY": "", "MAGIC_HOUR_BASE_URL": ""})


@nox.session(python=PYTHONS[-1:] or None)
def compat(session: nox.Session) -> None:
    """Drop-in checks against the official SDK (``magic-hour==0.90.0`` installed beside this package).

    tests/compat fails when an official ``client.v1`` method (sync or async) is missing here, rejects a
    parameter name the official one accepts, or when a code sample of the official package's own README
    files passes with the official SDK and fails with this one against the same emulator.
    """
    session.install(*TEST_DEPS, "magic-hour==0.90.0")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "tests/compat", *session.posargs)
