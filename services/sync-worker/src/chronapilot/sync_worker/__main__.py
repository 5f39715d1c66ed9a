"""``python -m chronapilot.sync_worker``: mirrors calendars and events."""

from chronapilot.common.service import run_service
from chronapilot.sync_worker.app import create_app

if __name__ == "__main__":
    run_service("sync_worker", create_app, lambda settings: settings.service.sync_worker_port)
