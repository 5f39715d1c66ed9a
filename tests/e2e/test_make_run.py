"""`make run` from the outside: ready quickly, every /readyz answers, nothing left after SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chronapilot.devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_make_run_is_ready_within_a_minute_and_leaves_nothing_behind_after_sigterm(tmp_path):
    ports = {
        name: free_port()
        for name in (
            "API",
            "WEBHOOK_GATEWAY",
            "SYNC_WORKER",
            "TOKEN_REFRESHER",
            "WEBHOOK_DISPATCHER",
            "OPS",
            "API_METRICS",
            "WEBHOOK_GATEWAY_METRICS",
            "EMBEDDED_KAFKA",
            "EMBEDDED_MONGODB",
            "SANDBOX_GOOGLE",
            "SANDBOX_MICROSOFT",
            "SANDBOX_RADICALE",
        )
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHRONAPILOT_") and k not in {"MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS"}
    }
    env.update({f"CHRONAPILOT_{name}_PORT": str(port) for name, port in ports.items()})
    env["CHRONAPILOT_RUN_DIR"] = str(tmp_path / "run")
    log_path = tmp_path / "make-run.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while "ready in" not in log_path.read_text():
            assert make.poll() is None, log_path.read_text()
            assert time.monotonic() - started < 60, log_path.read_text()
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        for name in ("API", "WEBHOOK_GATEWAY", "SYNC_WORKER", "TOKEN_REFRESHER", "WEBHOOK_DISPATCHER", "OPS"):
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/readyz", timeout=5) as r:
                assert r.status == 200
        for public, internal in (("API", "API_METRICS"), ("WEBHOOK_GATEWAY", "WEBHOOK_GATEWAY_METRICS")):
            metrics_url = f"http://127.0.0.1:{ports[internal]}/metrics"
            assert metrics_url in log_path.read_text(), "the banner names the internal metrics URL"
            with urllib.request.urlopen(metrics_url, timeout=5) as r:
                assert r.status == 200
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{ports[public]}/metrics", timeout=5)
            assert refused.value.code == 404
        demo = (tmp_path / "run" / "demo.env").read_text()
        assert f"CHRONAPILOT_API_URL=http://127.0.0.1:{ports['API']}" in demo
        assert f"CHRONAPILOT_OPS_URL=http://127.0.0.1:{ports['OPS']}" in demo
        assert f"{'ops console':<18} http://127.0.0.1:{ports['OPS']}/" in log_path.read_text()
        assert "MONGODB_URI=" in demo and "KAFKA_BOOTSTRAP_SERVERS=" in demo
        values = dict(
            line.split("=", 1) for line in demo.splitlines() if "=" in line and not line.startswith("#")
        )
        for name in (
            "CHRONAPILOT_DEMO_API_KEY",
            "CHRONAPILOT_DEMO_USER_ID",
            "CHRONAPILOT_GOOGLE_CLIENT_ID",
            "CHRONAPILOT_GOOGLE_CLIENT_SECRET",
            "CHRONAPILOT_MICROSOFT_CLIENT_ID",
            "CHRONAPILOT_MICROSOFT_CLIENT_SECRET",
            "CHRONAPILOT_DEMO_GOOGLE_EMAIL",
            "CHRONAPILOT_DEMO_ICLOUD_APP_PASSWORD",
        ):
            assert values.get(name), name
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['API']}/v1/users/{values['CHRONAPILOT_DEMO_USER_ID']}",
            headers={"Authorization": f"Bearer {values['CHRONAPILOT_DEMO_API_KEY']}"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
        banner = log_path.read_text().splitlines()
        first = banner.index(next(line for line in banner if "in another terminal, try:" in line))
        commands = [line.removeprefix("chronapilot:").strip() for line in banner[first + 1 : first + 3]]
        assert commands[0].startswith("source ") and commands[1].startswith("curl "), banner
        pasted = subprocess.run(
            ["bash", "-c", "\n".join(commands)],
            cwd=REPO,
            env={k: v for k, v in env.items() if not k.startswith("CHRONAPILOT_")},
            capture_output=True,
            text=True,
            timeout=30,
        )
        # pasted as printed, from the repository, in a shell that knows nothing of the stack: a 200
        # answers the list (a 401, as a single-quoted key would get, answers an error object)
        assert json.loads(pasted.stdout)["object"] == "list", (commands, pasted.stdout, pasted.stderr)
        family = descendants(make.pid)
        assert len(family) >= 10, family  # devstack, broker, MongoDB, sandbox, six service processes
        print(f"make run ready in {elapsed:.1f}s with {len(family)} processes")

        make.send_signal(signal.SIGTERM)
        make.wait(30)
        deadline = time.monotonic() + 60
        while (left := {pid for pid in family if alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"left behind: {left}\n{log_path.read_text()}"
        assert "stopped" in log_path.read_text()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for pid in descendants(make.pid):
            os.kill(pid, signal.SIGKILL)
