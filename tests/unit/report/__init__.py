"""Tests of dagcheck/report/."""
