"""Everything a worker runs, imported at once: a Dask worker ``preload``, so that
workers pay their import cost (torch, diffusers, the codecs, Prefect's task engine)
when they start, not in their first task."""

import latentpress.codecs.clric.codec  # noqa: F401
import latentpress.codecs.laduree.codec  # noqa: F401
import latentpress.models.metrics  # noqa: F401
import latentpress.models.vae  # noqa: F401
import latentpress.tasks  # noqa: F401
