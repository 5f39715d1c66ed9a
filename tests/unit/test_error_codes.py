"""The API's error codes have one registry (chronapilot.api.error_codes): every code the
server can send is in it, with the status it is sent with; the OpenAPI document lists them as
the enum of `error.code`; docs/errors.md is the registry's table."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import chronapilot.api
import chronapilot.common
from chronapilot.api import error_codes
from chronapilot.api.error_codes import CODES, ERROR_CODES
from chronapilot.api.openapi import build
from chronapilot.api.routes import OPERATIONS
from chronapilot.common import errors

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "services/api/src/chronapilot/api", ROOT / "libs/common/src/chronapilot/common"]
#: The domain errors the envelope answers with their own code (chronapilot.api.errors).
MAPPED = (errors.NotFound, errors.Conflict, errors.RateLimited, errors.InvalidRequest)


def _trees() -> list[tuple[Path, ast.AST]]:
    files = [path for source in SOURCES for path in sorted(source.rglob("*.py"))]
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in files]


def _subclasses(cls: type) -> set[type]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def _mapped_classes() -> set[type]:
    for package in (chronapilot.common, chronapilot.api):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    return set().union(*(_subclasses(base) for base in MAPPED))


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _literal(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def test_every_api_error_raised_names_a_registered_code_with_its_status():
    raised = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == "ApiError" and len(node.args) >= 2:
                status, code = _literal(node.args[0]), _literal(node.args[1])
                if isinstance(code, str):
                    raised.append((path.name, status, code))
    assert len(raised) > 40
    for where, status, code in raised:
        assert code in CODES, (where, code)
        assert status in ERROR_CODES[code].statuses, (where, status, code)  # type: ignore[index]


def test_every_code_a_mapped_domain_error_can_carry_is_registered():
    classes = _mapped_classes()
    for cls in classes:
        assert cls.code in CODES, (cls.__name__, cls.code)
    names = {cls.__name__ for cls in classes}
    given = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in names:
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        given.append((path.name, _literal(keyword.value)))
    assert given  # e.g. the window checks of occurrences.py
    for where, code in given:
        assert code in CODES, (where, code)


def test_every_registered_code_is_sent_from_somewhere():
    strings = set()
    for path, tree in _trees():
        if path.name != "error_codes.py":
            strings |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert CODES - strings == set()


def test_the_openapi_document_lists_the_registry_as_the_enum_of_error_code():
    document = build(OPERATIONS, server_url="http://api.invalid")
    code = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    assert set(code["enum"]) == CODES
    for item in document["paths"].values():
        for operation in item.values():
            responses = operation["responses"]
            assert {"400", "401", "500", "503"} <= set(responses), operation["operationId"]
            for status, response in responses.items():
                assert "X-Request-Id" in response["headers"], (operation["operationId"], status)


def test_docs_errors_md_is_the_registrys_table():
    committed = (ROOT / "docs/errors.md").read_text(encoding="utf-8")
    assert committed == error_codes.reference_table(), "run `make docs`"
    for code, doc in ERROR_CODES.items():
        assert f"| `{code}` | {', '.join(map(str, doc.statuses))} |" in committed
