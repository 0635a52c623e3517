"""Names of the components the orchestrator creates in slaves (see docs/design.md).

Kept apart so the configuration can refuse them as user ids without importing the planner.
"""
FEEDER_SYSTEM = "orchestrator-master"     # system:url in a slave reading the master's datasets
FEEDER_PREFIX = "orchestrator-feed-"      # + dataset id: the slave pipe copying that dataset
