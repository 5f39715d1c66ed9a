"""Services reach MongoDB only through the repositories (libs/common/.../store/<collection>.py)
and the connections owner: no PyMongo, no raw database handle, no hand-applied translation.
(The import contracts in pyproject.toml, run by `make lint`, check the imports themselves.)"""

import re
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
RAW = re.compile(r"pymongo|bson|\bstore\.db\b|\.db\.db\b|translate_errors|PyMongoError|ConnectionFailure")


def test_no_service_module_touches_the_database_driver_or_a_raw_handle():
    offending = [
        f"{path.relative_to(SERVICES)}:{number}: {line.strip()}"
        for path in sorted(SERVICES.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if RAW.search(line)
    ]
    assert list(SERVICES.rglob("*.py")), "no service sources found"
    assert not offending, "\n".join(offending)
