"""End-to-end scenarios, one file per operator's story: whole runs against the lab."""
