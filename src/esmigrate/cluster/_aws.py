"""AWS SigV4 signing for Amazon OpenSearch Service and Serverless. Loaded through ``_clients``.

opensearch-py's own signer signs each request; botocore supplies the credentials from the standard
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and the shared files, web
identity, container and instance roles) and refreshes temporary ones.
"""

from __future__ import annotations

import os
from typing import Any

import botocore.session
from opensearchpy import Urllib3AWSV4SignerAuth

from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import ConfigError


def signer(settings: ConnectionSettings) -> Any:
    """The ``http_auth`` callable that signs every request for ``settings.aws_service``."""
    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "AWS SigV4 signing is on, but no AWS credentials were found.",
            hint="Provide them the standard AWS way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(and AWS_SESSION_TOKEN), AWS_PROFILE with ~/.aws/credentials, or a role of the "
            "instance or task.",
        )
    # AWS_REGION is what the other AWS SDKs read; botocore itself reads AWS_DEFAULT_REGION and
    # the profile's region.
    region = (
        settings.aws_region or os.environ.get("AWS_REGION") or session.get_config_variable("region")
    )
    if not region:
        raise ConfigError(
            "AWS SigV4 signing needs the region of the domain or collection.",
            hint="Set --aws-region (ESMIGRATE_AWS_REGION, aws_region in the project file), "
            "AWS_REGION or AWS_DEFAULT_REGION.",
        )
    return Urllib3AWSV4SignerAuth(credentials, region, settings.aws_service)
