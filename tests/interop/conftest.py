"""Shared fixtures for the black-box interop suites.

The server under test is given by env ZK_HOSTS (default 127.0.0.1:2181).
Every test is bounded: a per-test timeout (env ZK_TEST_TIMEOUT, default 60 s)
is applied through pytest-timeout when that plugin is installed.
"""

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kazoo.client import KazooClient  # noqa: E402

import zkwire  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("ZK_TEST_TIMEOUT", "60"))


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


def _server_alive():
    """A raw handshake within 5 s; returns None if fine, else the reason."""
    try:
        c = zkwire.RawConn(io_timeout=5.0)
    except OSError as e:
        return "cannot connect to %s: %s" % (zkwire.zk_hosts(), e)
    try:
        _, timeout, sid, _, _ = c.handshake()
        if timeout <= 0 or sid == 0:
            return "handshake refused (timeOut %d)" % timeout
        c.close_session()
        return None
    except Exception as e:
        return "no valid ConnectResponse from %s: %r" % (zkwire.zk_hosts(), e)
    finally:
        c.close()


def pytest_sessionstart(session):
    why = _server_alive()
    if why:
        pytest.exit("server under test is not serving: " + why, returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # after a failure, stop at once if the server itself is gone (no 75 timeouts)
    if rep.failed and rep.when in ("setup", "call"):
        why = _server_alive()
        if why:
            pytest.exit("server under test stopped serving after %s: %s" % (item.nodeid, why),
                        returncode=1)


@pytest.fixture(scope="session")
def hosts():
    return zkwire.zk_hosts()


class ClientFactory:
    def __init__(self, hosts):
        self.hosts = hosts
        self.clients = []

    def __call__(self, start=True, **kw):
        kw.setdefault("timeout", 10.0)
        c = KazooClient(hosts=self.hosts, **kw)
        self.clients.append(c)
        if start:
            c.start(timeout=15)
        return c

    def close_all(self):
        for c in self.clients:
            try:
                c.stop()
            except Exception:
                pass
            try:
                c.close()
            except Exception:
                pass


@pytest.fixture
def make_client(hosts):
    f = ClientFactory(hosts)
    yield f
    f.close_all()


@pytest.fixture
def zk(make_client):
    return make_client()


@pytest.fixture
def root(hosts):
    """A unique, already-created root path, deleted recursively afterwards."""
    path = "/it-" + uuid.uuid4().hex
    c = KazooClient(hosts=hosts, timeout=10.0)
    c.start(timeout=15)
    try:
        c.create(path)
    except Exception:
        c.stop()
        c.close()
        raise
    yield path
    try:
        c.delete(path, recursive=True)
    finally:
        c.stop()
        c.close()
