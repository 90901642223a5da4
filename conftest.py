pytest_plugins = ["dagcheck.plugin", "dagcheck.gc_tuning"]
