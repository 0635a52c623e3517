"""Hypothesis strategies for random masters' pipes, shared by the property tests."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st


def draw_pipes(draw: Callable[[st.SearchStrategy], Any], ids: st.SearchStrategy,
               systems: list[str], read: tuple[str, ...], written: tuple[str, ...]
               ) -> list[dict[str, Any]]:
    """Pipes with the ids `ids` draws, each reading and writing as `_ends` says."""
    source, sink_of = _ends(tuple(systems), read, written)
    pipes = []
    for pid in draw(ids):
        pipe = {"_id": pid, "type": "pipe", "source": draw(source)}
        sink = draw(sink_of)
        if sink is not None:
            pipe["sink"] = sink
        pipes.append(pipe)
    return pipes


@functools.cache
def _ends(systems: tuple[str, ...], read: tuple[str, ...], written: tuple[str, ...]
          ) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    """A pipe's source and sink (None: the default sink) over `systems`, the datasets
    `read` and `written`. Made once per set of systems: hypothesis checks each strategy it
    is given anew, which cost more than drawing from it."""
    source = st.one_of(
        st.builds(lambda s: {"type": "json", "system": s, "url": "things"},
                  st.sampled_from(systems)),
        st.builds(lambda d: {"type": "dataset", "dataset": d}, st.sampled_from(read)),
        st.just({"type": "embedded", "entities": [{"_id": "e"}]}))
    sink = st.one_of(
        st.none(),                                        # default: dataset named after pipe
        st.builds(lambda d: {"type": "dataset", "dataset": d}, st.sampled_from(written)),
        st.builds(lambda s: {"type": "json", "system": s, "url": "x"},
                  st.sampled_from(systems)))
    return source, sink
