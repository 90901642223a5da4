"""Tests of dagcheck/rules/."""
