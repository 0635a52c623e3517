"""Connections to nodes: kept from one run to the next, and what the environment says
about reaching a node (proxies, CA bundle).

A steady run every few seconds or a /plan then a /sync reuse the connections the last one
left open, so they open no TCP connection and make no TLS handshake: at test and benchmark
rates that was more CPU than the reads. Each connection is reused only within IDLE_SECONDS
of its last use, for a load balancer or NAT may forget an idle one without a word.
"""
from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:    # urllib3 declares its connection types for type checkers only
    from urllib3._base_connection import BaseHTTPConnection

# The variables requests reads to reach a node over http or https: proxies and CA bundles.
_ENVIRONMENT = tuple(n for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
                     for n in (base, base.upper())) + ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@functools.lru_cache(maxsize=64)
def _settings(api_url: str, environment: tuple[str | None, ...]
              ) -> tuple[MutableMapping[str, str], bool | str, str | tuple[str, str] | None]:
    """What the environment says for a node's URL (proxies, CA bundle): requests works it out
    by walking every environment variable, twice, which cost a tenth of a run's CPU when each
    run did it for each node. `environment` (the values of _ENVIRONMENT) is the key, so
    a changed proxy is still seen."""
    del environment
    with requests.Session() as session:
        settings = session.merge_environment_settings(api_url, {}, True, None, None)
    verify = settings["verify"]      # True, or the CA bundle the environment names
    return settings["proxies"], True if verify is None else verify, settings["cert"]


class _FreshPool(HTTPConnectionPool):
    """A pool that never hands out a connection idle for longer than IDLE_SECONDS: it is
    closed instead, and urllib3 connects it again on use. Per connection, not per pool: a
    pool kept busy by light runs still holds deeper connections a busy run took long ago."""

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        if conn is not None:
            _idle_since[conn] = clock()
        super()._put_conn(conn)

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        conn = super()._get_conn(timeout)
        since = _idle_since.pop(conn, None)
        if since is not None and clock() - since > IDLE_SECONDS:
            conn.close()
        return conn


class _FreshHTTPSPool(_FreshPool, HTTPSConnectionPool):
    pass


clock = time.monotonic       # when a connection went idle (a test moves it on)
_idle_since: weakref.WeakKeyDictionary[BaseHTTPConnection, float] = \
    weakref.WeakKeyDictionary()
_FRESH_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _FreshPool,
                                                     "https": _FreshHTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with pools of _FreshPool, directly and through an HTTP(S) proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _FRESH_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):     # SOCKS pools are urllib3's own kind
            manager.pool_classes_by_scheme = _FRESH_POOLS
        return manager


def environment_settings(api_url: str) -> tuple[MutableMapping[str, str], bool | str,
                                                str | tuple[str, str] | None]:
    """Proxies, CA bundle and client certificate for a node's URL, as requests reads them
    from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...)."""
    return _settings(api_url, tuple(os.environ.get(n) for n in _ENVIRONMENT))


# Nodes whose connections are kept between runs (the least recently used go first): more
# than any real deployment has, fewer than a test suite starts.
NODES_KEPT = 128
# Connections last used longer ago than this are not reused. A load balancer or NAT on the
# way (Azure's drops idle flows after 4 minutes by default) may forget a connection without
# telling either end; a request sent on it would wait out REQUEST_TIMEOUT for nothing.
IDLE_SECONDS = 60.0
_kept: OrderedDict[tuple[str, int], _Adapter] = OrderedDict()
_kept_lock = threading.Lock()


def kept(api_url: str, size: int) -> requests.adapters.HTTPAdapter:
    """The keep-alive connections to a node, kept from one run to the next; each is reused
    only within IDLE_SECONDS of its last use (back-to-back runs, a /plan then a /sync):
    those then open no TCP connection and make no TLS handshake, which cost a run more CPU
    than its reads. Connections the node has closed meanwhile are found and replaced by
    urllib3 before use."""
    with _kept_lock:
        # Retries are ours (SesamClient): urllib3's would each get a fresh timeout.
        adapter = _kept.pop((api_url, size), None) or _Adapter(
            max_retries=0, pool_connections=1, pool_maxsize=size)
        _kept[api_url, size] = adapter
        while len(_kept) > NODES_KEPT:
            _kept.popitem(last=False)[1].close()
    return adapter
