"""Development sessions: ``nox`` runs tests, lint and typecheck; ``nox -s bench`` measures.

Test sessions run on every Python 3.10-3.13 found on this machine (pyenv's versions included), so a fresh
machine with a single Python still runs the whole suite.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "gen_check"]
nox.options.reuse_existing_virtualenvs = True

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
TEST_DEPS = ("-c", "tests/constraints.txt", "-e", ".[test]")
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
    """The whole test suite (unit, loopback end-to-end against the emulator, spec conformance)."""
    session.install(*TEST_DEPS)
    _install_prism(session)
    session.run("python", "-m", "pytest", *session.posargs)


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


@nox.session(python=PYTHONS[-1:] or None)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[:1] or None)
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright (strict) on the package."""
    session.install(*TEST_DEPS, "mypy", "pyright")
    session.run("mypy")
    session.run("pyright")


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
    """Fuzz the emulator with the pinned spec (tests/test_schemathesis.py; about 30 s)."""
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
