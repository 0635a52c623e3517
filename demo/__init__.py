"""`make demo`: the orchestrator at work on emulated Sesam nodes, in a few seconds.

A master and two slave emulator nodes and a stand-in for an on-premise source system run in
this process. The master is loaded with the shape of the README's example
(`my-oracle-system` managed by `s1`, `my-url-system` by `s2`), the orchestrator runs once,
then the data flows: slave pipes read the on-premise stand-in, the master's synchronising
pipes read the slaves, a feeder copies a master dataset to `s2` for its outbound pipe.
`python -m demo` prints the before/after view and exits 0 when it all worked.
"""
