"""Every distribution of the workspace installs alone from uv.lock and imports.

Each one is synced, as the images do it (``uv sync --frozen --no-dev --no-editable --package``),
into an environment of its own, which must then hold exactly the ChronaPilot distributions it
declares (with those they declare), none of the dev group, and import every module they ship.
The devstack's environment must also hold what ``make run`` starts: the sandbox and the six
service processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from chronapilot.devstack.stack import SERVICES

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".uv" / "bin" / "uv"  # installed, pinned, by `make install`
MEMBERS = sorted(
    path.parent for path in REPO.glob("*/*/pyproject.toml") if path.parts[-3] in {"libs", "services"}
)

#: Run inside the synced environment: which distributions it holds, and every module one of
#: them ships imported (a module failing to import is reported, not raised); then whether each
#: further module named can be run with ``python -m``.
PROBE = """
import importlib, importlib.metadata as md, importlib.util, json, re, sys
installed = sorted({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in md.distributions()})
files = md.distribution(sys.argv[1]).files or []
modules = sorted(
    ".".join(f.with_suffix("").parts).removesuffix(".__init__")
    for f in files
    if f.suffix == ".py" and f.parts[0] == "chronapilot"
)
failures = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
runnable = {m: importlib.util.find_spec(m + ".__main__") is not None for m in sys.argv[2:]}
print(json.dumps({"installed": installed, "modules": modules, "failures": failures, "runnable": runnable}))
"""
#: Tools of the dev group no service needs at run time.
DEV_TOOLS = {"pytest", "ruff", "mypy", "import-linter", "schemathesis", "playwright"}


def project(member: Path) -> dict[str, object]:
    return tomllib.loads((member / "pyproject.toml").read_text())["project"]


def workspace_requirements(name: str) -> set[str]:
    """``name`` and the workspace distributions it requires, transitively."""
    by_name = {project(member)["name"]: project(member) for member in MEMBERS}
    found, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        for requirement in by_name[current]["dependencies"]:
            required = requirement.split("==")[0].split(";")[0].strip()
            if required in by_name:
                todo.append(required)
    return found


def sync_alone(name: str, environment: Path) -> None:
    assert UV.exists(), "uv is installed by `make install`"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update(UV_PROJECT_ENVIRONMENT=str(environment), UV_PYTHON=sys.executable)
    completed = subprocess.run(
        [str(UV), "sync", "--frozen", "--no-dev", "--no-editable", "--package", name, "--quiet"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr


def probe(environment: Path, distribution: str, *runnable: str) -> dict[str, object]:
    completed = subprocess.run(
        [str(environment / "bin" / "python"), "-c", PROBE, distribution, *runnable],
        cwd=environment,  # never the repository, whose sources would shadow the installed ones
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_the_workspace_has_the_nine_distributions():
    names = {project(member)["name"] for member in MEMBERS}
    assert names == {
        "chronapilot-common",
        "chronapilot-sandbox",
        "chronapilot-devstack",
        "chronapilot-api",
        "chronapilot-webhook-gateway",
        "chronapilot-sync-worker",
        "chronapilot-token-refresher",
        "chronapilot-webhook-dispatcher",
        "chronapilot-ops",
    }


@pytest.mark.parametrize("member", MEMBERS, ids=lambda member: member.name)
def test_a_distribution_installs_alone_from_the_lock_and_imports(member, tmp_path):
    name = project(member)["name"]
    environment = tmp_path / "env"
    sync_alone(name, environment)

    found = probe(environment, name)
    chronapilot = {dist for dist in found["installed"] if dist.startswith("chronapilot-")}
    assert chronapilot == workspace_requirements(name)
    assert DEV_TOOLS.isdisjoint(found["installed"]), "the dev group stays out"
    package = f"chronapilot.{member.name.replace('-', '_')}"
    assert package in found["modules"] and len(found["modules"]) > 1, found["modules"]
    assert found["failures"] == {}


def test_the_devstack_alone_holds_everything_make_run_starts(tmp_path):
    environment = tmp_path / "env"
    sync_alone("chronapilot-devstack", environment)

    modules = [*SERVICES.values(), "chronapilot.sandbox"]
    found = probe(environment, "chronapilot-devstack", *modules)
    assert found["runnable"] == dict.fromkeys(modules, True)
    assert found["failures"] == {}
    usage = subprocess.run(
        [str(environment / "bin" / "python"), "-m", "chronapilot.devstack", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 0 and "run" in usage.stdout, usage.stderr
