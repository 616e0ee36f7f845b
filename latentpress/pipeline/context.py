"""What every pipeline step of one run shares: where it reads and writes, with which
VAE, under which run id, measuring what."""

from __future__ import annotations

from dataclasses import dataclass

from latentpress.infra.layout import ArchiveLayout


@dataclass(frozen=True)
class RunContext:
    """The archive a run works on, its latent store and ledger (default: the archive's
    own), the VAE its latents are made and decoded with, the run's id (on the ledger
    rows it appends) and the metrics it measures (None: all four)."""

    archive: str
    vae: str
    latents: str = ""
    ledger: str = ""
    run_id: str = ""
    metrics: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "latents", self.latents or self.layout.latents)
        object.__setattr__(self, "ledger", self.ledger or self.layout.ledger)

    @property
    def layout(self) -> ArchiveLayout:
        """URLs of everything under the archive."""
        return ArchiveLayout(self.archive)
