"""Secured and managed clusters, for real: TLS with a CA made here, certificate pinning, basic
auth and AWS SigV4, each checked by a proxy of the suite's own in front of the embedded node.

The proxy terminates TLS with a certificate of a throw-away CA, refuses requests without the right
credentials (recomputing SigV4 signatures with botocore) and forwards the rest to the node, so a
real ``esmigrate upgrade`` (a blue-green migration included) runs through the secured connection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, Secret
from esmigrate.exceptions import AuthenticationError, ClusterUnavailable
from tests import servers
from tests.migration_project import make_project, write_script

pytestmark = pytest.mark.integration

USER = "migrator"
# The AWS documentation's example key pair: fixed, and never valid anywhere.
AWS_KEY_ID = "AKIDEXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AWS_REGION = "eu-west-1"


@dataclass
class Tls:
    ca_path: str
    server_context: ssl.SSLContext
    fingerprint: str  # SHA-256 of the proxy's certificate, hex with colons


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return Tls(str(ca_path), context, fingerprint)


@pytest.fixture(scope="module")
def password() -> str:
    return f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def basic_proxy(tls: Tls, password: str, cluster_url: str) -> Iterator[servers.LocalServer]:
    """HTTPS + basic auth in front of the node."""
    answer = servers.basic_auth(USER, password, servers.forward_to(cluster_url))
    with servers.serving(answer, tls=tls.server_context) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def sigv4_proxy(tls: Tls, cluster_url: str) -> Iterator[servers.LocalServer]:
    """HTTPS + AWS SigV4 (service "es") in front of the node."""
    answer = servers.sigv4(
        AWS_KEY_ID, AWS_SECRET, AWS_REGION, "es", servers.forward_to(cluster_url)
    )
    with servers.serving(answer, tls=tls.server_context) as proxy:
        yield proxy


def indices(cluster: Cluster) -> list[tuple[str, str]]:
    """Every index of the node (hidden ones too) with its document count."""
    rows = cluster.request(
        "GET",
        "/_cat/indices",
        params={"format": "json", "h": "index,docs.count", "expand_wildcards": "all"},
    )
    return sorted((row["index"], row["docs.count"]) for row in rows)


# -- TLS and basic auth through the Python API ------------------------------------------------


def test_ca_certs_and_basic_auth(basic_proxy: servers.LocalServer, tls: Tls, password: str) -> None:
    settings = ConnectionSettings(
        urls=(basic_proxy.url,), username=USER, password=Secret(password), ca_certs=tls.ca_path
    )
    with connect(settings) as cluster:
        assert cluster.engine.name == "opensearch"
        assert cluster.health()["status"] in ("green", "yellow")
    expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
    assert basic_proxy.requests[-1].headers["authorization"] == expected


def test_an_unknown_ca_is_a_tls_error(basic_proxy: servers.LocalServer, password: str) -> None:
    settings = ConnectionSettings(urls=(basic_proxy.url,), username=USER, password=Secret(password))
    with pytest.raises(ClusterUnavailable, match="TLS handshake") as caught:
        connect(settings)
    assert "--ca-certs" in str(caught.value)
    assert password not in str(caught.value)


@pytest.mark.parametrize("spelling", ["colons", "plain lower case"])
def test_the_pinned_fingerprint_is_trusted_without_a_ca(
    basic_proxy: servers.LocalServer, tls: Tls, password: str, spelling: str
) -> None:
    pin = tls.fingerprint if spelling == "colons" else tls.fingerprint.replace(":", "").lower()
    settings = ConnectionSettings(
        urls=(basic_proxy.url,),
        username=USER,
        password=Secret(password),
        ssl_assert_fingerprint=pin,
    )
    with connect(settings) as cluster:
        assert cluster.engine.name == "opensearch"


def test_a_wrong_fingerprint_is_refused(basic_proxy: servers.LocalServer, password: str) -> None:
    wrong = ":".join(["AB"] * 32)
    seen = len(basic_proxy.requests)
    settings = ConnectionSettings(
        urls=(basic_proxy.url,),
        username=USER,
        password=Secret(password),
        ssl_assert_fingerprint=wrong,
    )
    with pytest.raises(ClusterUnavailable) as caught:
        connect(settings)
    assert "TLS handshake" in str(caught.value) or "Cannot connect" in str(caught.value)
    assert password not in str(caught.value)
    # The credentials never reached the server whose certificate did not match.
    assert len(basic_proxy.requests) == seen


def test_a_wrong_password_is_an_authentication_error(
    basic_proxy: servers.LocalServer, tls: Tls
) -> None:
    settings = ConnectionSettings(
        urls=(basic_proxy.url,), username=USER, password=Secret("wrong"), ca_certs=tls.ca_path
    )
    with pytest.raises(AuthenticationError, match=r"refused the credentials \(401\)") as caught:
        connect(settings)
    assert caught.value.status == 401
    assert caught.value.exit_code == 4


# -- the CLI, end to end: a real upgrade through the proxy ------------------------------------

# Runs the CLI in a child process with every logger of every library at DEBUG on stderr, so a
# test sees each log line a run could write.
_CLI_WITH_DEBUG_LOGS = """
import logging, sys
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
for name in ("", "opensearchpy.trace", "elasticsearch.trace", "elastic_transport"):
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
from esmigrate.cli import main
main(sys.argv[1:])
"""


def run_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ESMIGRATE_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-c", _CLI_WITH_DEBUG_LOGS, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def tiny_project(root: Path, prefix: str, url: str) -> None:
    """Two revisions: an index with documents behind an alias, then a blue-green migration
    that changes a field's type (a new index, a copy, a write block, an alias swap)."""
    config = make_project(root, url=url, history_index=f"{prefix}-hist")
    alias = f"{prefix}-posts"
    write_script(
        config,
        "r1",
        None,
        f"""
        op.create_index(
            "{alias}-v1",
            mappings={{"properties": {{"code": {{"type": "long"}}, "title": {{"type": "text"}}}}}},
            settings={{"number_of_replicas": 0}},
            aliases={{"{alias}": {{}}}},
        )
        op.request(
            "POST",
            "/_bulk",
            params={{"refresh": "true"}},
            body="".join(
                '{{"index": {{"_index": "{alias}-v1", "_id": "%d"}}}}\\n{{"code": %d, "title": "t"}}\\n'
                % (i, i)
                for i in range(50)
            ),
        )
        """,
    )
    write_script(
        config,
        "r2",
        "r1",
        f"""
        op.migrate(
            "{alias}",
            {{"properties": {{"code": {{"type": "keyword"}}, "title": {{"type": "text"}}}}}},
            settings={{"number_of_replicas": 0}},
            strategy="blue_green",
            dead_letter_index="{prefix}-dl",
        )
        """,
    )


def secrets_of(password: str) -> list[str]:
    return [password, base64.b64encode(f"{USER}:{password}".encode()).decode()]


def test_upgrade_through_tls_and_basic_auth_shows_no_secret(
    basic_proxy: servers.LocalServer,
    tls: Tls,
    password: str,
    cluster: Cluster,
    prefix: str,
    tmp_path: Path,
) -> None:
    tiny_project(tmp_path, prefix, basic_proxy.url)
    env = {
        "ESMIGRATE_USERNAME": USER,
        "ESMIGRATE_PASSWORD": password,
        "ESMIGRATE_CA_CERTS": tls.ca_path,
    }
    runs = [
        run_cli(tmp_path, env, "upgrade", "r1"),
        run_cli(tmp_path, env, "--json", "upgrade"),
        run_cli(tmp_path, env, "--json", "status"),
        run_cli(tmp_path, env, "--json", "history", "-v"),
        run_cli(tmp_path, env, "history", "-v"),
        run_cli(tmp_path, env, "--json", "info"),
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    assert cluster.count(f"{prefix}-posts") == 50
    mapping = cluster.request("GET", f"/{prefix}-posts/_mapping")
    (live,) = mapping.values()
    assert live["mappings"]["properties"]["code"]["type"] == "keyword"
    status = json.loads(runs[2].stdout)
    assert status, runs[2].stdout
    # The debug logs were really captured (else "no secret in the logs" would prove nothing).
    assert "esmigrate" in runs[1].stderr
    assert "opensearch" in runs[1].stderr or "urllib3" in runs[1].stderr

    stored = cluster.search(f"{prefix}-hist", {"size": 1000, "query": {"match_all": {}}})
    history = json.dumps(stored["hits"]["hits"])
    assert '"r2"' in history
    for secret in secrets_of(password):
        for run in runs:
            assert secret not in run.stdout
            assert secret not in run.stderr
        assert secret not in history


def test_a_wrong_password_writes_nothing_and_exits_4(
    basic_proxy: servers.LocalServer,
    tls: Tls,
    password: str,
    cluster: Cluster,
    prefix: str,
    tmp_path: Path,
) -> None:
    tiny_project(tmp_path, prefix, basic_proxy.url)
    before = indices(cluster)
    env = {
        "ESMIGRATE_USERNAME": USER,
        "ESMIGRATE_PASSWORD": "not-" + password,
        "ESMIGRATE_CA_CERTS": tls.ca_path,
    }
    for args in (("upgrade",), ("--json", "upgrade")):
        run = run_cli(tmp_path, env, *args)
        assert run.returncode == 4, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, run.stderr
        assert "refused the credentials (401)" in errors[0]
        assert "--username/--password" in errors[0]
        for secret in secrets_of("not-" + password):
            assert secret not in run.stdout + run.stderr
    assert indices(cluster) == before


# -- AWS SigV4 ----------------------------------------------------------------------------------


def aws_env(tls: Tls, secret: str = AWS_SECRET) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": AWS_REGION,
        # No instance metadata lookups: the credentials above are the chain's first link.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "ESMIGRATE_CA_CERTS": tls.ca_path,
    }


def test_a_migration_runs_through_a_signed_connection(
    sigv4_proxy: servers.LocalServer, tls: Tls, cluster: Cluster, prefix: str, tmp_path: Path
) -> None:
    tiny_project(tmp_path, prefix, sigv4_proxy.url)
    run = run_cli(tmp_path, {**aws_env(tls), "ESMIGRATE_AWS_SIGV4": "true"}, "--json", "upgrade")
    assert run.returncode == 0, run.stderr[-3000:]
    assert cluster.count(f"{prefix}-posts") == 50
    (live,) = cluster.request("GET", f"/{prefix}-posts/_mapping").values()
    assert live["mappings"]["properties"]["code"]["type"] == "keyword"
    signed = [r for r in sigv4_proxy.requests if prefix in r.path or r.path == "/"]
    assert any(r.method == "POST" and r.path.startswith("/_reindex") for r in sigv4_proxy.requests)
    assert all(
        r.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
        for r in signed
    )
    for secret in (AWS_SECRET,):
        assert secret not in run.stdout + run.stderr


def test_sigv4_with_a_profile_of_the_shared_credentials_file(
    sigv4_proxy: servers.LocalServer, tls: Tls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[prod]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    )
    for name, value in aws_env(tls).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "prod")
    settings = ConnectionSettings(
        urls=(sigv4_proxy.url,), ca_certs=tls.ca_path, aws_sigv4=True, aws_region=AWS_REGION
    )
    with connect(settings) as cluster:
        assert cluster.engine.name == "opensearch"
        assert cluster.count(".esmigrate-nothing-*") == 0


def test_serverless_is_signed_for_aoss_without_a_version_probe(
    tls: Tls, cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    forward = servers.forward_to(cluster_url)

    def serverless(request: servers.Request) -> servers.Response:
        if request.path == "/":  # OpenSearch Serverless does not serve GET /
            return servers.Response(404)
        return forward(request)

    answer = servers.sigv4(AWS_KEY_ID, AWS_SECRET, AWS_REGION, "aoss", serverless)
    for name, value in aws_env(tls).items():
        monkeypatch.setenv(name, value)
    with servers.serving(answer, tls=tls.server_context) as proxy:
        settings = ConnectionSettings(
            urls=(proxy.url,), ca_certs=tls.ca_path, aws_sigv4=True, aws_service="aoss"
        )
        with connect(settings) as cluster:
            assert str(cluster.engine) == "OpenSearch Serverless"
            assert cluster.count(".esmigrate-nothing-*") == 0
        assert [(r.method, r.path) for r in proxy.requests] == [
            ("POST", "/.esmigrate-nothing-*/_count")
        ]
        assert "/aoss/aws4_request" in proxy.requests[0].headers["authorization"]


def test_a_wrong_aws_secret_is_refused_with_exit_4(
    sigv4_proxy: servers.LocalServer, tls: Tls, cluster: Cluster, prefix: str, tmp_path: Path
) -> None:
    tiny_project(tmp_path, prefix, sigv4_proxy.url)
    before = indices(cluster)
    env = {**aws_env(tls, secret="not-the-secret"), "ESMIGRATE_AWS_SIGV4": "true"}
    run = run_cli(tmp_path, env, "upgrade")
    assert run.returncode == 4, run.stderr[-3000:]
    assert "signature does not match" in run.stderr
    assert "not-the-secret" not in run.stdout + run.stderr
    assert indices(cluster) == before


def test_no_aws_credentials_is_a_clear_error(
    sigv4_proxy: servers.LocalServer, tls: Tls, tmp_path: Path
) -> None:
    env = {k: v for k, v in aws_env(tls).items() if not k.startswith("AWS_ACCESS")}
    env.pop("AWS_SECRET_ACCESS_KEY")
    run = run_cli(tmp_path, env, "info", "--url", sigv4_proxy.url, "--aws-sigv4")
    assert run.returncode == 1
    assert "no AWS credentials were found" in run.stderr
    assert "Traceback" not in run.stderr
