"""Microsoft: identity platform v2 and Microsoft Graph (see ``client.py``)."""
