"""``python -m chronapilot.token_refresher``: keeps credentials alive, revokes on disconnect."""

from chronapilot.common.service import run_service
from chronapilot.token_refresher.app import create_app

if __name__ == "__main__":
    run_service("token_refresher", create_app, lambda settings: settings.service.token_refresher_port)
