"""Serve moto's AWS over real HTTP on loopback for the AWS tests."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's account
BUCKET = "photosite-test-photos"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class Aws:
    """Where the moto server listens, and clients for it."""

    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """Forget every resource, as if the server had just started."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", b"")
        urllib.request.urlopen(request, timeout=10).close()

    def queue_url(self, name: str) -> str:
        return f"{self.endpoint}/{ACCOUNT_ID}/{name}"

    def settings(self) -> dict[str, Any]:
        """Return the Django settings of AWS mode against this server."""
        return {
            "PHOTOS_BUCKET": BUCKET,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCOUNT_ID": ACCOUNT_ID,
            "PHOTO_EVENTS": "s3",
            "LABELER": "rekognition",
        }

    def environment(self) -> dict[str, str]:
        """Return the environment that starts a process in AWS mode."""
        host_port = self.endpoint.removeprefix("http://")
        return {
            **{key: str(value) for key, value in self.settings().items()},
            **CREDENTIALS,
            "CELERY_BROKER_URL": f"sqs://testing:testing@{host_port}",
        }


def s3_storage(aws: Aws) -> dict[str, Any]:
    """Return STORAGES["default"] for the private bucket on the moto server."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BUCKET,
            "region_name": REGION,
            "endpoint_url": aws.endpoint,
            "access_key": "testing",
            "secret_key": "testing",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "signature_version": "s3v4",
            "file_overwrite": True,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    }


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Aws]:
    """Start one moto server for the whole test session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield Aws(endpoint=f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def aws(
    moto_server: Aws, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Aws]:
    """Point the site at an empty moto account for one test."""
    moto_server.reset()
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name, value in moto_server.settings().items():
        setattr(settings, name, value)
    yield moto_server
