"""Tests of digest.mail."""
