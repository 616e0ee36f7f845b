"""The noise schedule and sampler settings, as diffusers schedulers.

Training noises latents with the schedule's ``add_noise``; decoding runs DDIM
(``eta = 0``, so the only randomness is the starting noise) over ``steps`` steps with
"trailing" timestep spacing (the first step starts from pure noise at the last
training timestep). The model predicts the clean latent (``prediction_type="sample"``)
and nothing is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers import DDIMScheduler

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
"""Schedules a bitstream may name, by their position (the stored code)."""


@dataclass(frozen=True)
class Schedule:
    """Diffusion schedule and sampler settings (written into the model bitstream)."""

    train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    steps: int = 50

    def check(self) -> None:
        """Raise ``ValueError`` unless diffusers can build this schedule."""
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"unknown beta schedule {self.beta_schedule!r}")
        if not 1 <= self.steps <= self.train_timesteps <= 10000:
            raise ValueError(f"need 1 <= steps {self.steps} <= train timesteps "
                             f"{self.train_timesteps} <= 10000")
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got "
                             f"{self.beta_start}, {self.beta_end}")


def make_scheduler(schedule: Schedule) -> DDIMScheduler:
    """A DDIM scheduler for ``schedule`` with its sampling timesteps set."""
    schedule.check()
    scheduler = DDIMScheduler(
        num_train_timesteps=schedule.train_timesteps,
        beta_start=schedule.beta_start,
        beta_end=schedule.beta_end,
        beta_schedule=schedule.beta_schedule,
        prediction_type="sample",
        clip_sample=False,
        timestep_spacing="trailing",
    )
    scheduler.set_timesteps(schedule.steps)
    return scheduler
