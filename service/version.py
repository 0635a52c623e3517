"""The service's version, written here only.

/status, /metrics (the build-info gauge), the page, the start-up log line, `--version` and
the image tag in README.rst all read it from here; CHANGELOG.rst has one section per value.
1.0 was the original orchestrator (image sesam/orchestrator-1.0); this rewrite is 2.
"""
__version__ = "2.0.0"
