"""Test session setup: no network, small thread pools, slow/network tests opt-in."""
from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("MOABB_DOWNLOAD_PROVIDER", "upstream")
os.environ.setdefault("MNE_DONTWRITE_HOME", "true")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each test worker gets one torch thread: the workers already fill the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")
    parser.addoption("--run-network", action="store_true", help="run tests marked network")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, flag in (("slow", "--run-slow"), ("network", "--run-network")):
        if config.getoption(flag):
            continue
        skip = pytest.mark.skip(reason=f"{marker} test: pass {flag} to run it")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


class _NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def _block_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a non-local connection fails loudly (tests must stay offline)."""
    if "network" in request.keywords:
        return
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.family == socket.AF_UNIX:
            return real_connect(self, address, *args, **kwargs)
        host = address[0] if isinstance(address, tuple) else address
        if host in ("127.0.0.1", "::1", "localhost"):
            return real_connect(self, address, *args, **kwargs)
        raise _NetworkBlocked(f"network access blocked in tests: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, *a, **k: (_ for _ in ()).throw(
                            _NetworkBlocked(f"network access blocked in tests: {address!r}")))
