"""Google Calendar: OAuth 2.0 and Calendar API v3 (see ``client.py``)."""
