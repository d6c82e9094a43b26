"""Tests of disentkit.viz."""
