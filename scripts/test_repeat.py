"""Flake finder: run chosen test files N times and print the failures per test.

Usage (through make): ``make test-repeat N=5 FILES="tests/e2e/test_realtime.py tests/e2e/test_sync_flow.py"``
or directly: ``.venv/bin/python scripts/test_repeat.py -n 5 tests/e2e/test_realtime.py [-- pytest args]``.

Each run is a separate pytest process (fresh infrastructure, as in CI) writing a JUnit XML
report; the table at the end lists every test that failed or errored at least once, with its
count over the runs, then one line per run. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def outcomes(report: Path) -> dict[str, str]:
    """``{test id: passed|failed|error|skipped}`` from a JUnit XML report."""
    found: dict[str, str] = {}
    if not report.exists():
        return found
    for case in ET.parse(report).iter("testcase"):  # noqa: S314 (pytest's own report)
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if "error" in kinds:
            found[test_id] = "error"
        elif "failure" in kinds:
            found[test_id] = "failed"
        elif "skipped" in kinds:
            found[test_id] = "skipped"
        else:
            found[test_id] = "passed"
    return found


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("-n", "--runs", type=int, default=5, help="how many times to run the files")
    parser.add_argument("-w", "--workers", type=int, default=2, help="pytest-xdist workers per run (0: none)")
    parser.add_argument("files", nargs="+", help="test files (and after --, extra pytest arguments)")
    args, extra = parser.parse_known_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    failures: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    lines = []
    with tempfile.TemporaryDirectory(prefix="test-repeat-") as folder:
        for run in range(1, args.runs + 1):
            report = Path(folder) / f"run-{run}.xml"
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
            if args.workers > 0:
                command += ["-n", str(args.workers), "--dist", "loadfile", "--no-loadscope-reorder"]
            started = time.monotonic()
            code = subprocess.call([*command, *args.files, *extra])
            took = time.monotonic() - started
            result = outcomes(report)
            bad = sorted(t for t, outcome in result.items() if outcome in ("failed", "error"))
            for test_id in result:
                seen[test_id] += 1
            failures.update(bad)
            passed = sum(1 for outcome in result.values() if outcome == "passed")
            if not result and code != 0:
                failures["<the run itself (no report)>"] += 1
            lines.append(f"run {run}: {passed} passed, {len(bad)} failed, exit {code}, {took:.0f} s")
    print(f"\n== test-repeat: {args.runs} runs of {' '.join(args.files)}")
    for line in lines:
        print(line)
    if not failures:
        print(f"failures per test: none ({len(seen)} tests, each passed in every run)")
        return 0
    print("failures per test (failed/runs):")
    for test_id, count in failures.most_common():
        print(f"  {count}/{args.runs}  {test_id}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
