"""iCloud: CalDAV with an app-specific password (see ``caldav.py``)."""
