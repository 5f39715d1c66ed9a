"""What installing each service pulls in: one HTTP stack, no caldav tree.

The services are resolved as a deployment installs them, with the project's Python: ``pip
install --dry-run --ignore-installed --report`` of chronapilot-common and the six service
distributions, given as local paths (chronapilot-common is on no index), in one pass (one
resolution instead of six: each local project costs pip an isolated build environment). Each
service's install set is then its closure in that report, read from the ``Requires-Dist`` of
every distribution (markers and extras evaluated); pinned as everything is, it is what
installing the service alone installs. The projects are copied first: setuptools writes its
``*.egg-info`` into the source tree. pip may reach the package index.

The caldav library (kept for the tests that check against iCloud's own client, a root workspace
dependency) brought, through niquests, ``urllib3-future``, which installs itself as the
``urllib3`` module and so replaces the real urllib3 beside it. :data:`CALDAV_TREE` is what left a
service's install set when caldav left chronapilot-common's dependencies (the api's install set
with caldav less the one without).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
SERVICES = sorted(path.parent.name for path in (REPO / "services").glob("*/pyproject.toml"))
COMMON = REPO / "libs" / "common"
#: Only caldav needed these (the api's install set at 594aa65 less the one without caldav).
CALDAV_TREE = frozenset(
    {
        "caldav",
        "niquests",
        "urllib3-future",
        "qh3",
        "jh2",
        "wassima",
        "calendaring-config",
        "icalendar-searcher",
        "lxml",
        "h11",
        "charset-normalizer",
        "pyyaml",
    }
)
RESOLVE_TIMEOUT_S = 480

pytestmark = pytest.mark.packaging


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    return target


def resolve_all(workdir: Path) -> dict[str, dict[str, object]]:
    """chronapilot-common and every service resolved together: ``{canonical name: metadata}``."""
    projects = [copy_project(COMMON, workdir / "common")]
    projects += [copy_project(REPO / "services" / service, workdir / service) for service in SERVICES]
    report = workdir / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--disable-pip-version-check",
            "--report",
            str(report),
            *map(str, projects),
        ],
        capture_output=True,
        text=True,
        timeout=RESOLVE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"pip failed\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    installs = json.loads(report.read_text())["install"]
    return {canonical(item["metadata"]["name"]): item["metadata"] for item in installs}


def closure(root: str, resolved: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """``root`` and everything its requirements pull in, as ``resolved`` pins them."""
    seen: dict[str, set[str]] = {}
    pending = [(root, frozenset[str]())]
    while pending:
        name, extras = pending.pop()
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        for line in resolved[name].get("requires_dist") or []:  # type: ignore[union-attr]
            requirement = Requirement(str(line))
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in {"", *seen[name]}
            )
            if wanted:
                pending.append((canonical(requirement.name), frozenset(requirement.extras)))
    return {name: resolved[name] for name in seen}


@pytest.fixture(scope="module")
def install_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, object]]]:
    resolved = resolve_all(tmp_path_factory.mktemp("services"))
    return {service: closure(f"chronapilot-{service}", resolved) for service in SERVICES}


def test_the_six_services_are_resolved() -> None:
    assert SERVICES == [
        "api",
        "ops",
        "sync-worker",
        "token-refresher",
        "webhook-dispatcher",
        "webhook-gateway",
    ]


def test_each_service_installs_itself_and_chronapilot_common(
    install_sets: dict[str, dict[str, dict[str, object]]],
) -> None:
    for service, installed in install_sets.items():
        assert f"chronapilot-{service}" in installed, service
        assert "chronapilot-common" in installed, service
        assert "aiohttp" in installed, service


def test_no_service_installs_caldav_or_anything_only_caldav_needed(
    install_sets: dict[str, dict[str, dict[str, object]]],
) -> None:
    found = {service: sorted(CALDAV_TREE & set(installed)) for service, installed in install_sets.items()}

    assert found == {service: [] for service in SERVICES}


def test_urllib3_when_a_service_has_it_is_the_real_urllib3(
    install_sets: dict[str, dict[str, dict[str, object]]],
) -> None:
    for service, installed in install_sets.items():
        # urllib3-future installs the module `urllib3` under another distribution name
        assert not {name for name in installed if name.startswith("urllib3-")}, service
        if "urllib3" in installed:
            metadata = installed["urllib3"]
            assert metadata["name"] == "urllib3", service
            assert "future" not in str(metadata.get("summary", "")).lower(), service
