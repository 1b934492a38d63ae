"""The client libraries are extras: loaded only when a connection needs one, a missing one named
with the extra to install; an application's own configured client is reused as it is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import elasticsearch
import opensearchpy
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, load_config
from esmigrate.exceptions import ConfigError, UnsupportedEngine
from esmigrate.migrate import BlueGreen
from tests import servers
from tests.migrate_support import PAINLESS, TARGET_MAPPING, all_docs, create_source, transform
from tests.test_elasticsearch_contract import fake_elasticsearch


def python(code: str, *blocked: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the modules ``blocked`` cannot be imported
    (as if their package were not installed)."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_importing_esmigrate_loads_no_client() -> None:
    result = python(
        """
        import esmigrate, esmigrate.command, esmigrate.cli, esmigrate.migrate, esmigrate.schema
        import esmigrate.operations, esmigrate.rollback, esmigrate.testing, esmigrate.transform
        loaded = [m for m in ("elasticsearch", "elastic_transport", "opensearchpy", "botocore")
                  if m in sys.modules]
        print(loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.integration
def test_opensearch_without_opensearch_py_names_the_extra(cluster_url: str) -> None:
    # The elasticsearch client asks the node who it is, then the opensearch client is missing.
    result = python(
        f"""
        from esmigrate.cli import main
        main(["info", "--url", {cluster_url!r}])
        """,
        "opensearchpy",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: OpenSearch needs the opensearch-py package, which is not installed. "
        "Install it: pip install 'esmigrate[opensearch]'."
    ]


def test_elasticsearch_without_the_elasticsearch_client_names_the_extra() -> None:
    with servers.serving(fake_elasticsearch(9)) as es:
        result = python(
            f"""
            from esmigrate import connect, ConnectionSettings
            from esmigrate.exceptions import MissingClient
            try:
                connect(ConnectionSettings(urls=({es.url!r},)))
            except MissingClient as exc:
                print(exc.library, exc.extra)
            """,
            "elasticsearch",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["elasticsearch", "esmigrate[elasticsearch]"]


def test_no_client_at_all_and_sigv4_without_botocore_name_their_extras() -> None:
    result = python(
        """
        from esmigrate import connect, ConnectionSettings
        from esmigrate.exceptions import MissingClient
        for settings in (ConnectionSettings(), ConnectionSettings(aws_sigv4=True)):
            try:
                connect(settings)
            except MissingClient as exc:
                print(exc.extra)
        """,
        "opensearchpy",
        "elasticsearch",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["esmigrate[opensearch]", "esmigrate[opensearch]"]
    aws = python(
        """
        from esmigrate import connect, ConnectionSettings
        from esmigrate.exceptions import MissingClient
        try:
            connect(ConnectionSettings(aws_sigv4=True, aws_region="eu-west-1"))
        except MissingClient as exc:
            print(exc.extra)
        """,
        "botocore",
    )
    assert aws.returncode == 0, aws.stderr
    assert aws.stdout.split() == ["esmigrate[aws]"]


# -- reusing an application's client -----------------------------------------------------------


@pytest.fixture
def app_client(cluster_url: str) -> Iterator[opensearchpy.OpenSearch]:
    """The application's own client, configured its own way."""
    client = opensearchpy.OpenSearch(hosts=[cluster_url], timeout=42)
    yield client
    client.close()


@pytest.mark.integration
def test_connect_reuses_the_client_and_leaves_it_open(
    app_client: opensearchpy.OpenSearch, cluster_url: str
) -> None:
    with connect(client=app_client) as cluster:
        assert cluster.engine.name == "opensearch"
        assert cluster.where == cluster_url
        assert cluster.settings.client is app_client
        assert cluster.client_library.startswith("opensearch-py ")
    with Cluster.from_client(app_client) as cluster:
        assert cluster.health()["status"] in ("green", "yellow")
    # Closing esmigrate's Cluster left the application's client working.
    assert app_client.info()["version"]["distribution"] == "opensearch"


@pytest.mark.integration
def test_commands_use_the_client_given_in_the_config(
    app_client: opensearchpy.OpenSearch, cluster_url: str, tmp_path: Path
) -> None:
    config = load_config(cwd=tmp_path, env={}, client=app_client)
    assert config.connection.client is app_client
    info = command.info(config)
    assert info["engine"] == "opensearch"
    assert info["url"] == cluster_url
    assert app_client.ping()


@pytest.mark.integration
def test_blue_green_through_the_applications_client(
    app_client: opensearchpy.OpenSearch, cluster: Cluster, prefix: str
) -> None:
    alias, _, docs = create_source(cluster, prefix, 30)
    with Cluster.from_client(app_client) as reused:
        result = BlueGreen(
            reused,
            alias,
            TARGET_MAPPING,
            script=PAINLESS,
            settings={"number_of_replicas": 0},
            state_index=f"{prefix}-hist",
            dead_letter_index=f"{prefix}-dl",
        ).run()
    assert result.copied == 30
    assert all_docs(cluster, result.target) == {k: transform(dict(v)) for k, v in docs.items()}
    assert app_client.ping()


@pytest.mark.integration
def test_the_pytest_plugin_uses_the_client_of_esmigrate_settings(
    cluster_url: str, tmp_path: Path
) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import os

            import opensearchpy
            import pytest

            from esmigrate.config import ConnectionSettings


            @pytest.fixture(scope="session")
            def esmigrate_settings():
                client = opensearchpy.OpenSearch(hosts=[os.environ["APP_URL"]])
                yield ConnectionSettings(client=client)
                client.close()
            """
        )
    )
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            def test_with_the_apps_client(esmigrate_cluster, esmigrate_prefix):
                assert esmigrate_cluster.settings.client is not None
                index = f"{esmigrate_prefix}-things"
                esmigrate_cluster.request(
                    "PUT", f"/{index}", body={"settings": {"number_of_replicas": 0}}
                )
                assert esmigrate_cluster.count(index) == 0
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**env, "APP_URL": cluster_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


@pytest.mark.integration
def test_a_client_of_the_other_engine_is_refused(cluster_url: str) -> None:
    es_client = elasticsearch.Elasticsearch(cluster_url)
    try:
        with pytest.raises(UnsupportedEngine, match=r"opensearchpy\.OpenSearch client"):
            connect(client=es_client)
    finally:
        es_client.close()


def test_what_is_not_a_synchronous_client_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"synchronous opensearchpy\.OpenSearch"):
        connect(client=opensearchpy.AsyncOpenSearch())
    with pytest.raises(ConfigError, match=r"Cannot use a builtins\.dict"):
        connect(client={"hosts": ["http://localhost:9200"]})
    assert ConnectionSettings(client=object()) == ConnectionSettings()
    assert "client=" not in repr(ConnectionSettings(client=object()))
