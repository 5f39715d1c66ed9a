"""``python -m chronapilot.ops``: the ops console, on the internal ``CHRONAPILOT_OPS_PORT``."""

from chronapilot.common.service import run_service
from chronapilot.ops.console.app import create_app

if __name__ == "__main__":
    run_service("ops", create_app, lambda settings: settings.service.ops_port)
