"""The token refresher's composition root: the refresh loop and the disconnect consumer."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.bus import Topic
from chronapilot.common.runtime import Overrides, add_background_loop, add_consumer, install_runtime
from chronapilot.common.settings import Settings
from chronapilot.token_refresher.refresh_due import run_refresh_loop
from chronapilot.token_refresher.revoke import disconnect_handler

#: The consumer group, namespaced like the topics (``chronapilot.token-refresher`` by default),
#: so deployments or test runs sharing one broker never share a group.
GROUP_SUFFIX = "token-refresher"


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    app = web.Application()
    install_runtime(app, settings, "token_refresher", overrides=overrides)
    add_consumer(
        app,
        group_id=(overrides and overrides.group_id) or f"{settings.kafka.topic_prefix}.{GROUP_SUFFIX}",
        topics=[Topic.CONNECTIONS],
        make_handler=disconnect_handler,
    )
    add_background_loop(app, "token-refresh", run_refresh_loop)
    return app
