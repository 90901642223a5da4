"""dagcheck: compliance and health checks for Exchange Server Database Availability Groups.

PYTEST_DONT_REWRITE: the `dagcheck` command imports this package before it starts pytest, and an
installed pytest11 plugin is marked for assertion rewriting; the package's own asserts need none
(the checks in checks/ are rewritten as test modules), so pytest is told not to warn about it.
"""

__version__ = "0.1.0"
