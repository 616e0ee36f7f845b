"""The noise schedule and sampler settings, as diffusers schedulers.

Training noises latents with the schedule's ``add_noise``; decoding runs DDIM
(``eta = 0``, so the only randomness is the starting noise) over ``steps`` steps with
"trailing" timestep spacing (the first step starts from pure noise at the last
training timestep). The model predicts the clean latent (``prediction_type="sample"``)
and nothing is clipped.
"""

from __future__ import annotations

from diffusers import DDIMScheduler

from latentpress.codecs.laduree.params import BETA_SCHEDULES, Schedule

__all__ = ["BETA_SCHEDULES", "Schedule", "make_scheduler"]


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
