"""Relic et al.: adaptive quantization of the latent and diffusion denoising (in progress:
the continuous schedule; the codec is not registered yet)."""
