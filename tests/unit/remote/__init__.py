"""Tests of dagcheck/remote/."""
