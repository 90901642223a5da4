"""dagcheck's pytest face, one package; the repository's conftest.py loads it (`pytest_plugins`).

Its modules, one job each, from the bottom up (each imports only those above it in this list):

- keys: every config.stash key and constant the others share (imports none of them)
- scope: which run this is (checks or tests, phases, nightly or ad hoc)
- notices: the run's notices in words (TLS, cleartext, stale tables, transitions)
- configure: options, the inventory found, loaded and validated, markers, report paths
- run: the run's objects made on first use (session, controller, now, maintenance, drift)
- parametrize: checks parametrized from the inventory, ordered by phase
- fixtures: what checks ask for
- outcomes: each check's result as data, waivers, the gate, the exit status
- console: the end-of-run lines and the verdict as the last line
- reporting: results JSON, history, summary, mail and every pytest-html hook
- lifecycle: the build and lifecycle tables read at configure, and their freshness
- gc_tuning: the garbage collector's settings during a check run (issue 27)
- retention: what a check run keeps of each check to its end (issue 27)
- junit_stream: a check run's JUnit XML written as it goes, not held to the end (issue 27)

The order below is the registration order, which decides the order pluggy calls hooks of equal
priority in (the last registered first): reporting's configure runs before configure's (so it sees
the markexpr the user gave), and at the end of a run the console prints lifecycle's lines, then
reporting's, then its own, as dagcheck always has.
"""

pytest_plugins = [
    "dagcheck.plugin.configure",
    "dagcheck.plugin.run",
    "dagcheck.plugin.parametrize",
    "dagcheck.plugin.fixtures",
    "dagcheck.plugin.outcomes",
    "dagcheck.plugin.console",
    "dagcheck.plugin.reporting",
    "dagcheck.plugin.lifecycle",
    "dagcheck.plugin.gc_tuning",
    "dagcheck.plugin.retention",
    "dagcheck.plugin.junit_stream",
]
