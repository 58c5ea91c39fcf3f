"""Tests of digest.match."""
