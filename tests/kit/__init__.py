"""Helpers the tests share: servers on loopback, seed data, settings and paths; no fixtures."""
