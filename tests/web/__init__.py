"""Tests of digest.web."""
