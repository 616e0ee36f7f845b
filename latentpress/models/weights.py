"""Names of the pretrained weights each model loads, under the models folder.

Kept apart from the models (no torch import) so that a command can check that the
weights it will need are there before it starts any work.
"""

LPIPS_WEIGHTS = "lpips/alex_v0.1_full.pth"
"""``lpips.LPIPS(net="alex")`` state dict."""
VGG16_WEIGHTS = "torchvision/vgg16_features.pth"
"""ImageNet VGG16 convolutions, the backbone of DISTS."""
METRIC_WEIGHTS = (LPIPS_WEIGHTS, VGG16_WEIGHTS)
"""What measuring quality needs (``evaluate``, ``archive``)."""
