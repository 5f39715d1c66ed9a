"""The connection has one owner: no code outside ``common/connections`` writes ``connections``,
and docs/lifecycle.md shows the owner's transition table and codes as they are."""

from __future__ import annotations

import re
from pathlib import Path

from chronapilot.common.connections.lifecycle import codes_markdown, transition_table_markdown

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "libs/common/src/chronapilot/common/connections"
WRITES = (
    r"(update_one|update_many|find_one_and_update|find_one_and_replace|insert_one|insert_many"
    r"|replace_one|delete_one|delete_many|bulk_write)"
)
#: ``db.connections.<write>``, ``db["connections"].<write>``, or a collection variable bound to it
DIRECT = re.compile(r"""(\.connections|\[\s*["']connections["']\s*\])\s*\.\s*""" + WRITES)
BOUND = re.compile(r"""(\w+)\s*=\s*[\w.]*(\.connections|\[\s*["']connections["']\s*\])\s*$""", re.M)


def _sources() -> list[Path]:
    files = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]
    return [f for f in files if OWNER not in f.parents and "sandbox" not in f.parts]


def test_only_the_owner_writes_the_connections_collection():
    offenders = []
    for path in _sources():
        text = path.read_text()
        if DIRECT.search(text):
            offenders.append(str(path.relative_to(ROOT)))
        for match in BOUND.finditer(text):
            if re.search(rf"\b{re.escape(match.group(1))}\s*\.\s*{WRITES}", text):
                offenders.append(f"{path.relative_to(ROOT)} ({match.group(1)})")
    assert offenders == [], f"write connections through chronapilot.common.connections: {offenders}"
    assert len(_sources()) > 50, "the scan found the services' sources"


def test_the_check_catches_a_direct_write():
    assert DIRECT.search("await db.connections.update_one({'_id': x}, {})")
    assert DIRECT.search('await runtime.store.db["connections"].find_one_and_update(f, u)')
    assert not DIRECT.search("await db.connections.find_one({'_id': x})")


def test_the_lifecycle_doc_shows_the_transition_table_and_every_code():
    lifecycle = (ROOT / "docs" / "lifecycle.md").read_text()
    assert lifecycle.startswith("# Connection lifecycle")
    assert transition_table_markdown() in lifecycle
    assert codes_markdown() in lifecycle
