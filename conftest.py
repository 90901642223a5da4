pytest_plugins = ["dagcheck.plugin"]
