"""Tests of digest.sources."""
