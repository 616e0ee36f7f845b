"""How latentpress talks to S3 through botocore: without ``Expect: 100-continue``.

botocore asks the server for an interim ``100 Continue`` before sending the body of
every ``PutObject``. aiohttp (under s3fs) awaits that answer with no timeout of its
own: its read timeout starts only once the body is sent. A server or proxy that
accepts a connection and never answers therefore holds a PUT forever, and with it the
run (seen through a black-holing proxy: an archive stuck for 10 minutes on one PUT).
The handshake saves a client from sending a large body the server would refuse; our
PUTs are single objects of kilobytes to a few megabytes, so it buys nothing here.

:func:`drop_expect_continue` removes botocore's handler from the list every new
botocore session registers, so every S3 client made afterwards in this process (ours,
zarr's, pyarrow's through fsspec) sends PUTs whole and falls under the configured
read timeout. ``latentpress.infra.storage.options`` calls it before the first S3
filesystem of a process is opened, never on import.

Why a process-wide list and not each client's own setting: botocore has no
configuration option for the header, and a session of our own handed to s3fs
(``session=``) travels in the filesystem's options, which Dask and fsspec pickle, and a
botocore session cannot be pickled.
"""

from __future__ import annotations

from functools import cache


@cache
def drop_expect_continue() -> None:
    """Stop new botocore sessions from adding ``Expect: 100-continue`` to S3 requests
    (once per process)."""
    try:
        from botocore import handlers
    except ImportError:  # no S3 support installed: nothing to change
        return
    handlers.BUILTIN_HANDLERS[:] = [spec for spec in handlers.BUILTIN_HANDLERS
                                    if spec[1] is not handlers.add_expect_header]  # fmt: skip
