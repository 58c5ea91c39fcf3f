"""The web app: public pages (subscribe, confirm, preferences, unsubscribe, feeds), admin API."""

from digest.web.app import create_app, serve_web

__all__ = ["create_app", "serve_web"]
