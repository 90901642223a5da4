"""Tests of dagcheck/sources/."""
