"""The mirror's one writer of events and calendars: what a provider page or calendar list (the
sync worker) or a provider's answer to a write (the API's write-back) changes in the mirror,
written with the ``mirror.*`` events that tell of it, in the caller's transaction."""
