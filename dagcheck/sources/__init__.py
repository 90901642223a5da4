"""Exchange data sources, one module per resource: the command that reads it, its dataclass and parser."""
