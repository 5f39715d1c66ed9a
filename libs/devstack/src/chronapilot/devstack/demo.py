"""Demo data for ``make run``: an application with an API key and a user, listed in demo.env.

The key is shown only once by the API, so it is kept in ``demo.env`` and reused across runs
while it still works; otherwise a new demo application is created. The API's callback is also
registered with the Microsoft sandbox app, whose defaults only cover port 8080.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chronapilot.devstack.stack import Stack


def _request(method: str, url: str, *, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - local URL
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _previous(stack: Stack) -> dict[str, str]:
    from chronapilot.devstack.stack import read_env_file

    path = stack.run_dir / "demo.env"
    return read_env_file(path) if path.exists() else {}


def _register_microsoft_callback(stack: Stack, api_url: str) -> None:
    graph = stack.sandbox_env.get("CHRONAPILOT_MICROSOFT_LOGIN_URL")
    client_id = stack.sandbox_env.get("CHRONAPILOT_MICROSOFT_CLIENT_ID")
    if not graph or not client_id:
        return
    status, apps = _request("GET", f"{graph}/_admin/apps")
    if status != 200:
        return
    current = next((a for a in apps if a["client_id"] == client_id), None)
    callback = f"{api_url}/oauth/microsoft/callback"
    if current is not None and callback not in current["redirect_uris"]:
        _request(
            "PATCH",
            f"{graph}/_admin/apps/{client_id}",
            body={"redirect_uris": [*current["redirect_uris"], callback]},
        )


def create_demo_data(stack: Stack) -> dict[str, str]:
    api = stack.urls()["api"]
    _register_microsoft_callback(stack, api)
    previous = _previous(stack)
    key, user_id = previous.get("CHRONAPILOT_DEMO_API_KEY"), previous.get("CHRONAPILOT_DEMO_USER_ID")
    if key and user_id and _request("GET", f"{api}/v1/users/{user_id}", key=key)[0] == 200:
        application_id = previous.get("CHRONAPILOT_DEMO_APPLICATION_ID", "")
    else:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "chronapilot.api",
                "apps",
                "create",
                "--name",
                "ChronaPilot demo",
                "--return-url-prefix",
                f"{api}/demo/",
                "http://localhost:3000/",
                "--json",
            ],
            env=stack.service_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        answer = json.loads(created.stdout)
        key, application_id = answer["api_key"], answer["application_id"]
        status, user = _request(
            "POST",
            f"{api}/v1/users",
            key=key,
            body={"external_id": "demo-user", "metadata": {"source": "make-run"}},
        )
        if status != 201:
            raise RuntimeError(f"could not create the demo user (HTTP {status})")
        user_id = user["id"]
    return {
        "CHRONAPILOT_DEMO_API_KEY": key,
        "CHRONAPILOT_DEMO_APPLICATION_ID": application_id,
        "CHRONAPILOT_DEMO_USER_ID": user_id,
        "CHRONAPILOT_DEMO_RETURN_URL": f"{api}/demo/return",
    }
