"""The repository itself: README, packaging, the import graph, the tests' layout and helpers."""
