"""Exchange data sources: one module per Exchange resource (its command, dataclass and parser)."""
