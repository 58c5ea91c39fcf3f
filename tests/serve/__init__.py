"""Tests of digest.serve."""
