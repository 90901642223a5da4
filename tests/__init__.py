"""The project's own tests, as packages so that two test files may share a name in different folders (pytest's prepend import mode then imports each as tests.<folder>.<name>)."""
