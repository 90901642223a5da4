"""The project's own tests, arranged as packages so that two files may share a name in different folders.

pytest's default (prepend) import mode then imports tests/unit/rules/test_components.py as
tests.unit.rules.test_components, beside tests.lab.test_components, as pytest's docs recommend.
"""
