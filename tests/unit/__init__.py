"""Unit tests mirroring dagcheck/: the test of dagcheck/<pkg>/<module>.py is tests/unit/<pkg>/test_<module>.py."""
