"""Before docs/guide/schemas.md's Document example: a default connection for the Document
classes, and a post stored before versioning (no ``schema_version``) as ``posts/1``."""

import os

from opensearchpy import OpenSearch
from opensearchpy.connection.connections import connections

connections.create_connection(hosts=[os.environ["ESMIGRATE_URL"]])
OpenSearch(os.environ["ESMIGRATE_URL"]).index(
    index="posts", id="1", body={"title": "Hello"}, refresh=True
)
