"""Unit tests for pyrt's pure modules: no root, no containers, no cgroupfs, no mounts.

A package (this file) so that module names here never clash with tests/runtime's.
"""
