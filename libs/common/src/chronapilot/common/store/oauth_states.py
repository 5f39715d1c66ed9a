"""The ``oauth_states`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class OAuthStates(Repository):
    COLLECTION = "oauth_states"
