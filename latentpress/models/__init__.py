"""Pretrained networks: latent autoencoders and perceptual metrics."""
