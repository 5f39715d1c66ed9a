"""The Scalar bundle the API serves at /docs is the pinned npm package's file, byte for byte.

tools/scalar/package-lock.json pins ``@scalar/api-reference`` (version and sha512 integrity);
scripts/system-deps.sh fetches that package's tarball with ``npm pack``. The copy shipped as
package data of chronapilot-api (so an image built from the Python packages needs no npm) must be
its ``dist/browser/standalone.js``, with the same version and the license beside it."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from chronapilot.api.reference import ASSETS, SCALAR_VERSION, STATIC

TOOL = Path(__file__).resolve().parents[2] / "tools" / "scalar"


def pinned() -> tuple[str, str]:
    lock = json.loads((TOOL / "package-lock.json").read_text())
    package = lock["packages"]["node_modules/@scalar/api-reference"]
    declared = json.loads((TOOL / "package.json").read_text())["dependencies"]["@scalar/api-reference"]
    assert declared == package["version"], "package.json and package-lock.json disagree"
    return package["version"], package["integrity"]


def test_the_served_bundle_is_the_pinned_packages_file():
    version, integrity = pinned()
    assert version == SCALAR_VERSION
    tarball = TOOL / "pack" / f"scalar-api-reference-{version}.tgz"
    assert tarball.is_file(), "run scripts/system-deps.sh (make test does)"
    data = tarball.read_bytes()
    assert "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == integrity
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/dist/browser/standalone.js")
        assert member is not None
        upstream = member.read()
        manifest = json.loads(archive.extractfile("package/package.json").read())  # type: ignore[union-attr]
    shipped = ASSETS[f"scalar-{version}.js"].read_bytes()
    assert len(shipped) == len(upstream) and shipped == upstream
    assert manifest["version"] == version and manifest["license"] == "MIT"
    assert "MIT License" in (STATIC / "scalar" / "LICENSE").read_text()


def test_the_docs_assets_are_package_data_of_the_api_distribution():
    """An image built from the Python packages (no npm) gets the bundle: every file under
    static/ matches a package-data pattern of services/api/pyproject.toml."""
    pyproject = tomllib.loads((TOOL.parents[1] / "services" / "api" / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    files = [path for path in STATIC.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"standalone.js", "LICENSE", "VERSION", "docs.js"}
    for path in files:
        assert any(fnmatch(path.name, pattern) for pattern in patterns), path
