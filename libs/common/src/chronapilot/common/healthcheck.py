"""``python -m chronapilot.common.healthcheck SERVICE``: exit 0 when the service's /readyz is 200.

For container health checks: reads the same settings as the service to find its port.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from chronapilot.common.settings import Settings

PORTS = {
    "api": lambda s: s.service.api_port,
    "webhook_gateway": lambda s: s.service.webhook_gateway_port,
    "sync_worker": lambda s: s.service.sync_worker_port,
    "token_refresher": lambda s: s.service.token_refresher_port,
    "webhook_dispatcher": lambda s: s.service.webhook_dispatcher_port,
    "ops": lambda s: s.service.ops_port,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PORTS:
        print(f"usage: python -m chronapilot.common.healthcheck {{{','.join(PORTS)}}}", file=sys.stderr)
        return 2
    port = PORTS[argv[0]](Settings())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3):
            return 0
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
