"""dagcheck: compliance and health checks for Exchange Server Database Availability Groups."""

__version__ = "0.1.0"
