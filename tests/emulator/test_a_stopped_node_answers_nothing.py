"""A node that goes down drops its open connections, as a real one does when it restarts:
a client that kept a connection alive must not go on being answered by a stopped node."""
from __future__ import annotations

import pytest
import requests

from emulator import EmulatorNode

SECRET = "a-stopped-node-secret-0123456789abcdef"


def test_a_kept_alive_connection_is_dropped_when_the_node_stops():
    node = EmulatorNode(jwt_secret=SECRET).start()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {node.token()}"
        assert session.get(node.api_url + "/env").status_code == 200
        pool = session.get_adapter(node.api_url).poolmanager
        assert pool.pools, "the answered request left its connection open for the next one"
        node.stop()
        with pytest.raises(requests.ConnectionError, match="Connection refused|aborted|reset"):
            session.get(node.api_url + "/env")
