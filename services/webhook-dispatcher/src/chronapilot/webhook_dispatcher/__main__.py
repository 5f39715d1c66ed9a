"""``python -m chronapilot.webhook_dispatcher``: delivers signed webhooks to customers' endpoints."""

from chronapilot.common.service import run_service
from chronapilot.webhook_dispatcher.app import create_app

if __name__ == "__main__":
    run_service("webhook_dispatcher", create_app, lambda settings: settings.service.webhook_dispatcher_port)
