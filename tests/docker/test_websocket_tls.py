"""docker/: browsers reach the NATS nodes over wss:// only (TLS on each node's WebSocket).

Checked without Docker: the node configs, the certificate deploy-config makes and keeps,
the ports compose publishes, and a real nats-server running node 1's generated config
(host paths, free ports) that a browser-like client logs in to over wss://, trusting
the generated certificate, while plain ws:// gets nowhere.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from cryptography import x509

from labkit.deploy import (
    NODES,
    WS_HOST_PORT,
    DeployConfig,
    certificate_names,
    node_name,
    render_node_config,
    write_deploy_config,
    ws_urls,
)
from labkit.deploy_tls import ensure_certificate
from labkit.nsc.wrapper import Nsc
from labkit.stack.nats_server import nats_server_binary
from tests.conftest import make_settings
from tests.stack.ws_client import WsNatsClient


def _node_config(node: int) -> str:
    return render_node_config(
        node,
        system_account="ASYS",
        system_account_jwt="eyJ.sys",
        route_password="route-secret",
        max_memory_store=1024,
        max_file_store=4096,
    )


def test_every_node_serves_browsers_over_tls_only() -> None:
    for node in range(1, NODES + 1):
        config = _node_config(node)
        block = config[config.index("websocket {") :]
        assert 'listen: "0.0.0.0:8443"' in block
        assert 'cert_file: "/etc/nats/tls/server.crt"' in block
        assert 'key_file: "/etc/nats/tls/server.key"' in block
        assert "no_tls" not in config


def test_deploy_config_makes_a_certificate_for_the_browsers_names_and_keeps_it(
    deployment: DeployConfig,
) -> None:
    tls = deployment.out / "nats" / "tls"
    cert, key = tls / "server.crt", tls / "server.key"
    assert key.stat().st_mode & 0o077 == 0, "the private key is 0600"
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "nats-1",
        "nats-2",
        "nats-3",
    }
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    before = cert.read_bytes(), key.read_bytes()

    write_deploy_config(deployment.out, settings=make_settings(deployment.out.parent / "home"))
    assert (cert.read_bytes(), key.read_bytes()) == before  # kept, like the secrets
    write_deploy_config(
        deployment.out, rotate=True, settings=make_settings(deployment.out.parent / "home")
    )
    assert cert.read_bytes() != before[0]  # labkit's own self-signed one is rotated


def test_a_certificate_put_there_by_hand_is_never_replaced(tmp_path: Path) -> None:
    theirs = _certificate_of_another_issuer()
    (tmp_path / "server.crt").write_bytes(theirs)
    (tmp_path / "server.key").write_bytes(b"their key")
    for rotate in (False, True):  # not even by --rotate: only labkit's own self-signed one
        assert not ensure_certificate(tmp_path, certificate_names(), rotate=rotate).made
    assert (tmp_path / "server.crt").read_bytes() == theirs
    assert (tmp_path / "server.key").read_bytes() == b"their key"


def _certificate_of_another_issuer() -> bytes:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.example.org")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_compose_publishes_each_nodes_wss_port_on_loopback(
    resolved: dict[str, Any],
) -> None:
    urls = ws_urls().split(",")
    for node in range(1, NODES + 1):
        ports = resolved["services"][node_name(node)]["ports"]
        published = [port for port in ports if port["target"] == 8443]
        assert published == [
            {
                "mode": "ingress",
                "host_ip": "127.0.0.1",
                "target": 8443,
                "published": str(WS_HOST_PORT + node - 1),
                "protocol": "tcp",
            }
        ], ports
        assert urls[node - 1] == f"wss://localhost:{WS_HOST_PORT + node - 1}"


# --- node 1's generated config, run for real -----------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_node_one(deployment: DeployConfig, workdir: Path) -> Iterator[dict[int, int]]:
    """nats-server on node 1's generated config: host paths, loopback, free ports.

    Yields the free port standing for each of the config's (4222 clients, 8222
    monitoring, 6222 routes, 8443 browsers).
    """
    nats_dir = deployment.out / "nats"
    text = (nats_dir / "nats-1.conf").read_text()
    ports = {4222: _free_port(), 8222: _free_port(), 6222: _free_port(), 8443: _free_port()}
    text = text.replace("/etc/nats/operator.jwt", str(nats_dir / "operator.jwt"))
    text = text.replace("/etc/nats/tls", str(nats_dir / "tls"))
    text = text.replace("/data/resolver", str(nats_dir / "nats-1" / "resolver"))
    text = text.replace("/data/jetstream", str(workdir / "jetstream"))
    text = text.replace("port: 4222", f"port: {ports[4222]}")
    for port in (8222, 6222, 8443):
        text = text.replace(f'"0.0.0.0:{port}"', f'"127.0.0.1:{ports[port]}"')
    text = text.replace('host: "0.0.0.0"', 'host: "127.0.0.1"')
    # (Its routes name nats-2 and nats-3, which do not resolve here: it keeps dialling.)
    config = workdir / "node-1.conf"
    config.write_text(text)
    log_path = workdir / "node-1.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [str(nats_server_binary()), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 15
        while not all(_listening(ports[port]) for port in (4222, 8222, 8443)):
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield ports
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def node_one(deployment: DeployConfig, tmp_path: Path) -> Iterator[tuple[int, DeployConfig]]:
    """Node 1's generated config run for real; its wss:// port and the deployment."""
    with running_node_one(deployment, tmp_path) as ports:
        yield ports[8443], deployment


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_a_browser_logs_in_over_wss_and_plain_ws_gets_nowhere(
    node_one: tuple[int, DeployConfig],
) -> None:
    port, deployment = node_one
    nsc = Nsc(deployment.out / "nsc", make_settings(deployment.out.parent / "home").nsc)
    creds = nsc.create_user("wss-learner").creds
    cert = deployment.out / "nats" / "tls" / "server.crt"

    browser = WsNatsClient(f"wss://localhost:{port}", sslopt={"ca_certs": str(cert)})
    try:
        info = browser.connect(creds)  # TLS verified against the generated certificate
        assert info["server_name"] == "nats-1"
    finally:
        browser.close()

    with pytest.raises(ssl.SSLError):  # a client that does not trust it is refused
        WsNatsClient(f"wss://localhost:{port}").connect(creds)
    with pytest.raises((websocket.WebSocketException, ConnectionError, OSError)):
        WsNatsClient(f"ws://localhost:{port}", timeout=5).connect(creds)
