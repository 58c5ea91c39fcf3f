"""The web app: public pages (subscribe, confirm, preferences, unsubscribe, feeds), admin API."""
