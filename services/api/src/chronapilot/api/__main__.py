"""``python -m chronapilot.api``: the public REST API."""

from chronapilot.api.app import create_app
from chronapilot.common.service import run_service

if __name__ == "__main__":
    run_service("api", create_app, lambda settings: settings.service.api_port)
