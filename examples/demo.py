"""The README demo: talks to the cluster in ESMIGRATE_URL (the embedded node by default)."""

from __future__ import annotations

import orjson

from esmigrate import command, connect, load_config


def main() -> None:
    config = load_config()
    info = command.info(config)
    print(f"Connected to {info['engine']} {info['version']} at {info['url']} ({info['status']})")
    with connect(config.connection) as cluster:
        index = "esmigrate-demo"
        if cluster.exists(index):
            cluster.request("DELETE", f"/{index}")
        cluster.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0}})
        body = b"".join(
            orjson.dumps({"index": {"_index": index, "_id": str(i)}})
            + b"\n"
            + orjson.dumps({"title": f"post {i}"})
            + b"\n"
            for i in range(100)
        )
        cluster.bulk(body, refresh="true")
        print(f"Indexed and counted {cluster.count(index)} documents in {index!r}")
        cluster.request("DELETE", f"/{index}")


if __name__ == "__main__":
    main()
