"""``python -m chronapilot.webhook_gateway``: receives provider notifications."""

from chronapilot.common.service import run_service
from chronapilot.webhook_gateway.app import create_app

if __name__ == "__main__":
    run_service(
        "webhook_gateway",
        create_app,
        lambda settings: settings.service.webhook_gateway_port,
        internal_port=lambda settings: settings.service.webhook_gateway_metrics_port,
    )
