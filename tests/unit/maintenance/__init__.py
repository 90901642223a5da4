"""Tests of dagcheck/maintenance/."""
