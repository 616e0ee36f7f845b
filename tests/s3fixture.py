"""A real S3 server (moto) on loopback, configured the way a user configures fsspec.

``conftest.py`` lists it in ``pytest_plugins``, so every test may ask for
``s3_bucket``: one server per session, yielding a bucket name for
``s3://<bucket>/...`` URLs.

fsspec reads ``FSSPEC_<PROTOCOL>_<KWARG>`` variables once, when it is imported, into
``fsspec.config.conf``; every new filesystem instance takes its defaults from that
dict. So the fixture sets the variables in ``os.environ`` (for processes started
later, such as Dask workers) and applies them to this process with
``fsspec.config.set_conf_env(fsspec.config.conf)``. Both are undone afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import fsspec
import fsspec.config
import pytest
from moto.server import ThreadedMotoServer

KEY, SECRET, REGION = "testing", "testing", "us-east-1"


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[str]:
    """Name of an empty bucket on a moto S3 server at 127.0.0.1 (fsspec configured)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_KEY": KEY,
        "FSSPEC_S3_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    bucket = f"lp-test-{uuid.uuid4().hex[:8]}"
    s3_class = fsspec.get_filesystem_class("s3")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        # A fresh dict, so the original (or its absence) comes back afterwards.
        mp.setitem(fsspec.config.conf, "s3", dict(fsspec.config.conf.get("s3", {})))
        fsspec.config.set_conf_env(fsspec.config.conf)
        s3_class.clear_instance_cache()
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )
        client.create_bucket(Bucket=bucket)
        try:
            yield bucket
        finally:
            s3_class.clear_instance_cache()
            server.stop()


@pytest.fixture
def s3_root(s3_bucket: str) -> str:
    """A fresh ``s3://`` prefix of its own for one test (tests share the bucket)."""
    return f"s3://{s3_bucket}/{uuid.uuid4().hex[:8]}"
