"""repricerd runtime: CLI, settings, lifecycle, scheduler, database, passes and HTTP server."""

__version__ = "0.1.0"
