"""Exchange data sources, one module per Exchange resource: the command that reads it, its dataclass and parser."""
