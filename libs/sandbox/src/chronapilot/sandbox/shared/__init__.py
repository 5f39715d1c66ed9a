"""Pieces both provider emulators (Google, Microsoft) are built from.

Each module owns one concept and documents its API in its docstring:

- ``clock``: :class:`SandboxClock`, wall-clock time that the admin API can move forward, so
  expiry (codes, tokens, channels, subscriptions) is testable without sleeping.
- ``pkce``: :func:`verify_code_verifier` and :func:`s256_challenge` (RFC 7636).
- ``faults``: :class:`FaultRegistry` with per-route :class:`RouteFault` (status 429/500/503 with
  ``Retry-After``, added latency) and :class:`NotificationFault` (drop / duplicate / reorder),
  plus :func:`fault_middleware`.
- ``counters``: :class:`RequestCounters` (requests per route, 401s served, notifications sent)
  and :func:`counting_middleware`.
- ``delivery``: :class:`NotificationDispatcher`, asynchronous webhook delivery that applies
  notification faults and counts what was sent.
- ``consent``: :func:`render_consent_page` (accessible HTML form, no JavaScript) and
  :func:`read_consent_form` (what a scripted browser needs to submit it).
- ``state_file``: :func:`load_state`, :func:`save_state_atomically` and :class:`StateFileSaver`
  (debounced save-on-change of a JSON snapshot).
- ``admin_routes``: :func:`shared_admin_routes`, the admin endpoints for faults, counters and the
  clock, identical on both emulators.
"""
