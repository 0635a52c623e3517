"""`make bench`: the performance benchmark of issue 6 (see bench/__main__.py)."""
