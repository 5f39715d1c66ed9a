"""What installing each service pulls in: one HTTP stack, no caldav tree.

Each service distribution is resolved as a deployment would install it, with the project's
Python: ``pip install --dry-run --ignore-installed --report`` of the service and of
chronapilot-common, both given as local paths (chronapilot-common is on no index). The six
resolutions run concurrently, each on its own copy of the two projects (setuptools writes its
``*.egg-info`` into the source tree while it prepares the metadata). They may reach the package
index.

The caldav library (kept for the tests that check against iCloud's own client, a root workspace
dependency) brought, through niquests, ``urllib3-future``, which installs itself as the
``urllib3`` module and so replaces the real urllib3 beside it. :data:`CALDAV_TREE` is what
disappeared from a service's install set when caldav left chronapilot-common's dependencies
(the report compared before and after).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

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
RESOLVE_TIMEOUT_S = 600

pytestmark = pytest.mark.packaging


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    return target


async def resolve(service: str, workdir: Path) -> dict[str, dict[str, object]]:
    """The install set of ``service``: ``{canonical name: the report's metadata}``."""
    common = copy_project(COMMON, workdir / "common")
    project = copy_project(REPO / "services" / service, workdir / service)
    report = workdir / "report.json"
    process = await asyncio.create_subprocess_exec(
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
        str(common),
        str(project),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), RESOLVE_TIMEOUT_S)
    assert process.returncode == 0, f"{service}: pip failed\n{output.decode(errors='replace')[-4000:]}"
    installs = json.loads(report.read_text())["install"]
    return {canonical(item["metadata"]["name"]): item["metadata"] for item in installs}


@pytest.fixture(scope="module")
def install_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, object]]]:
    async def all_services() -> list[dict[str, dict[str, object]]]:
        return await asyncio.gather(
            *(resolve(service, tmp_path_factory.mktemp(service)) for service in SERVICES)
        )

    return dict(zip(SERVICES, asyncio.run(all_services()), strict=True))


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
