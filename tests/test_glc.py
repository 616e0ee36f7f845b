"""The glc codec: a tiny model trained in seconds on real crops, exact round trips
through the container on any thread count, rate rising with quality, a golden model
and stream that keep decoding, and clear errors for bad model bytes.

Regenerate the golden files (after a deliberate format change) with
``LATENTPRESS_REGENERATE_GOLDEN=1 pytest tests/test_glc.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from latent_fixtures import crops, item

from latentpress.codecs import CodecError, CollectionModelCodec, DecodeContext, get_codec
from latentpress.codecs.glc import bitstream
from latentpress.codecs.glc.codec import load_model
from latentpress.codecs.glc.model import GlcModel
from latentpress.codecs.glc.train import channel_weights, distortion, lambdas
from latentpress.codecs.hyperprior.prior import bound
from latentpress.infra.layout import pack_image, unpack_image

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_MODEL, GOLDEN_IMAGE = GOLDEN / "glc_model_v1.lpm", GOLDEN / "glc_v1.lpc"
GOLDEN_LATENT = {(0, 0, 0): 0.33803168, (3, 9, 11): 0.07345521, (1, 4, 6): -0.12331091, (2, 0, 11): -0.5175842}
"""Decoded values of the golden stream at a few positions (printed by a regeneration)."""


@pytest.fixture(scope="module")
def model(latents: list[np.ndarray]) -> bytes:
    codec = get_codec("glc")
    statuses = []
    data = codec.train(
        [item(z, f"{i:016x}") for i, z in enumerate(latents)], codec.params("tiny"), progress=statuses.append
    )
    assert statuses and statuses[-1].step == statuses[-1].steps == codec.params("tiny").steps
    assert all(np.isfinite(s.loss) and s.bpp > 0 for s in statuses)
    return data


def test_codec_contract() -> None:
    codec = get_codec("glc")
    assert isinstance(codec, CollectionModelCodec) and codec.domain == "latent" and codec.info.collection_model
    assert {"tiny", "fast", "default"} <= set(codec.presets) and codec.params(quality=2.5).quality == 2.5
    for bad in (0.5, 4.5, float("nan")):
        with pytest.raises(CodecError, match="quality"):
            codec.params(quality=bad)
    assert list(lambdas(torch.tensor([1.0, 2.5, 4.0]))) == pytest.approx([0.03, (0.12 * 0.48) ** 0.5, 1.92], rel=1e-5)


def test_round_trip_through_the_container_is_exact(model: bytes, test_latent: np.ndarray) -> None:
    codec = get_codec("glc")
    payload = codec.encode(item(test_latent), codec.params("tiny", 2.0), model)
    data = pack_image(codec="glc", codec_version=codec.version, config={"codec": "glc", "preset": "tiny", "quality": 2.0},
                      payload=payload, width=96, height=80, vae_id="taesd", image_id="0123456789abcdef",
                      shared_model="fedcba9876543210")  # fmt: skip
    container, _ = unpack_image(data)
    context = DecodeContext(container.width, container.height, "taesd", model)
    decoded = codec.decode(container.sections["payload"], context)
    assert decoded.shape == test_latent.shape and decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, load_model(model).reconstruct(test_latent, 2.0))  # what the encoder made
    assert float(np.mean((decoded - test_latent) ** 2)) < float(np.mean(test_latent**2))


def test_rate_rises_with_quality(model: bytes, test_latent: np.ndarray) -> None:
    codec = get_codec("glc")
    sizes = [len(codec.encode(item(test_latent), codec.params("tiny", q), model)) for q in (1.0, 2.0, 3.0, 4.0)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1], sizes


THREADS = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from latentpress.codecs import CodecInput, DecodeContext, get_codec
model, latent = open(sys.argv[2], "rb").read(), np.load(sys.argv[3])
codec = get_codec("glc")
payload = codec.encode(CodecInput("a" * 16, 96, 80, latent=latent), codec.params("tiny", 3.0), model)
decoded = codec.decode(payload, DecodeContext(96, 80, "taesd", model))
print(hashlib.sha256(payload).hexdigest(), hashlib.sha256(decoded.tobytes()).hexdigest())
"""


def test_streams_are_the_same_on_one_and_two_threads(model: bytes, test_latent: np.ndarray, tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(model)
    np.save(tmp_path / "latent.npy", test_latent)
    digests = [
        subprocess.run(
            [sys.executable, "-c", THREADS, str(n), str(tmp_path / "model.bin"), str(tmp_path / "latent.npy")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()  # fmt: skip
        for n in (1, 2)
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 2


def test_exact_networks_are_integer_and_order_free(model: bytes) -> None:
    net = load_model(model)
    z = torch.randint(-5, 6, (1, net.model.arch.hyper_channels, 3, 4)).double()
    features = net.coder.exact.features(z, 12, 16)
    assert torch.equal(features, torch.round(features)) and features.shape == (1, 2 * net.model.arch.channels, 12, 16)
    decoded = torch.randint(-600, 600, (1, net.model.arch.channels, 12, 16)).double()
    one = [t.clone() for t in net.coder.exact.part(2, features, decoded)]
    threads = torch.get_num_threads()
    with torch.autograd.grad_mode.no_grad():
        torch.set_num_threads(1 if threads > 1 else 2)
        try:
            again = net.coder.exact.part(2, features, decoded)
        finally:
            torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, again, strict=True))


def test_bad_model_bytes_are_refused(model: bytes, test_latent: np.ndarray) -> None:
    codec = get_codec("glc")
    for bad, match in [(b"", "shorter"), (b"\x09\x00" + model[2:], "version"), (model[:100], "out of range"),
                       (model[:-40], "malformed")]:  # fmt: skip
        with pytest.raises(CodecError, match=match):
            bitstream.unpack_model(bad)
    # Weights of another architecture under this model's header: every shape is checked.
    other = GlcModel(dataclasses.replace(bitstream.unpack_model(model)[0].arch, channels=8))
    foreign = bitstream.pack_model(other, bitstream.ModelRecord(other.arch, "taesd", 1, 1))
    with pytest.raises(CodecError, match="shape"):
        bitstream.unpack_model(model[: _json_end(model)] + foreign[_json_end(foreign) :])
    with pytest.raises(CodecError, match="collection model"):
        codec.decode(codec.encode(item(test_latent), codec.params("tiny"), model), DecodeContext(96, 80, "taesd"))
    with pytest.raises(CodecError, match="larger than the image"):
        codec.decode(codec.encode(item(test_latent), codec.params("tiny"), model), DecodeContext(8, 8, "taesd", model))


def _json_end(data: bytes) -> int:
    return 6 + int.from_bytes(data[2:6], "little")


def test_golden_model_and_stream_keep_decoding(model: bytes, test_latent: np.ndarray) -> None:
    codec = get_codec("glc")
    if os.environ.get("LATENTPRESS_REGENERATE_GOLDEN"):
        payload = codec.encode(item(test_latent), codec.params("tiny", 2.5), model)
        GOLDEN_MODEL.write_bytes(model)
        GOLDEN_IMAGE.write_bytes(pack_image(codec="glc", codec_version=1, config={"codec": "glc", "preset": "tiny",
                                            "quality": 2.5}, payload=payload, width=96, height=80, vae_id="taesd", image_id="0123456789abcdef",
                                            shared_model=hashlib.sha256(model).hexdigest()[:16]))  # fmt: skip
        decoded = codec.decode(payload, DecodeContext(96, 80, "taesd", model))
        pytest.skip("golden files written; GOLDEN_LATENT = " + repr({k: float(decoded[k]) for k in GOLDEN_LATENT}))
    container, config = unpack_image(GOLDEN_IMAGE.read_bytes(), source=str(GOLDEN_IMAGE))
    assert (container.codec, container.codec_version, config["quality"]) == ("glc", 1, 2.5)
    decoded = codec.decode(container.sections["payload"], DecodeContext(96, 80, "taesd", GOLDEN_MODEL.read_bytes()))
    assert decoded.shape == (4, 10, 12)
    for index, value in GOLDEN_LATENT.items():
        assert decoded[index] == pytest.approx(value, abs=1e-4)


def test_perceptual_stage_changes_the_synthesis_alone(
    model: bytes, latents: list[np.ndarray], test_latent: np.ndarray
) -> None:
    from latentpress.codecs.glc.perceptual import PerceptualStage, finetune

    codec = get_codec("glc")
    net, record, _ = bitstream.unpack_model(model)
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    seen = []
    finetune(net, latents, "taesd", PerceptualStage(steps=2, crop=8, batch_size=2, learning_rate=1e-3),
             progress=lambda step, lpips, mse: seen.append((step, lpips)))  # fmt: skip
    assert seen and seen[-1][0] == 2 and 0 < seen[-1][1] < 1
    changed = {name for name, tensor in net.state_dict().items() if not torch.equal(tensor, before[name])}
    assert changed and all(name.startswith("synthesis.") for name in changed)
    tuned = bitstream.pack_model(net, record)
    payloads = [codec.encode(item(test_latent), codec.params("tiny", 2.0), m) for m in (model, tuned)]
    assert payloads[0] == payloads[1]  # the same bits ...
    decoded = [codec.decode(payloads[0], DecodeContext(96, 80, "taesd", m)) for m in (model, tuned)]
    assert not np.array_equal(decoded[0], decoded[1])  # ... drawn otherwise


def test_latent_perceptual_training_moves_the_model(model: bytes, latents: list[np.ndarray]) -> None:
    codec = get_codec("glc")
    items = [item(z, f"{i:016x}") for i, z in enumerate(latents)]
    statuses = []
    params = dataclasses.replace(codec.params("tiny"), latent_perceptual=1.0, distance_refresh=0.15)
    perceptual = codec.train(items, params, progress=statuses.append)
    assert perceptual != model  # the distance's gradient reached the networks
    # a photo held aside, its crops measured in pixels at the end of the rate-distortion stage
    (check,) = [s.check for s in statuses if s.check is not None]
    assert check.step == codec.params("tiny").steps and 0.05 < check.lpips < 2 and 0.05 < check.dists < 1
    assert 0 < check.predicted < 10 and check.drift == pytest.approx(check.predicted - check.lpips - check.dists)
    # a distance that missed by more than distance_refresh is refitted to these very crops, and then misses less
    measured = check.lpips + check.dists
    assert (check.refreshed is not None) == (abs(check.drift) > 0.15 * measured)
    if check.refreshed is not None:
        assert abs(check.refreshed - measured) < abs(check.drift)
    assert "held aside: LPIPS" in [s for s in statuses if s.check is not None][0].summary()
    assert bitstream.unpack_model(perceptual)[1].arch == bitstream.unpack_model(model)[1].arch
    foreign = [dataclasses.replace(i, vae_id="no-such-vae") for i in items]
    with pytest.raises(CodecError, match="latent perceptual training needs the VAE 'no-such-vae'"):
        codec.train(foreign, dataclasses.replace(codec.params("tiny"), latent_perceptual=1.0))
    with pytest.raises(CodecError, match="distance_refresh refreshes the latent distance"):
        dataclasses.replace(params, latent_perceptual=0.0).validate()


def test_taesd3_latents_of_16_channels() -> None:
    from latentpress.models.vae import load_vae

    vae = load_vae("taesd3")
    latents = vae.encode(crops(64))
    assert latents[0].shape[0] == 16
    codec = get_codec("glc")
    model = codec.train([item(z, f"{i:016x}") for i, z in enumerate(latents)], codec.params("tiny"), steps=5)
    assert bitstream.unpack_model(model)[1].arch.latent_channels == 16
    payload = codec.encode(item(latents[0]), codec.params("tiny", 3.0), model)
    decoded = codec.decode(payload, DecodeContext(64, 64, "taesd3", model))
    assert decoded.shape == latents[0].shape
    with pytest.raises(CodecError, match="16-channel"):
        codec.encode(item(np.zeros((4, 8, 8), np.float32)), codec.params("tiny"), model)


def test_distortion_means_the_same_on_any_latent_scale(latents: list[np.ndarray]) -> None:
    """Scaling a channel scales its errors and its variance alike: the training
    distortion (MSE over variance, summed over channels) does not change."""
    scales = np.array([0.5, 2.0, 1.0, 3.0], np.float32)[:, None, None]
    x = torch.from_numpy(np.stack([z[:, :8, :8] for z in latents]))
    noisy = x + 0.1 * torch.randn_like(x)
    plain = distortion(noisy, x, channel_weights(latents))
    scaled = [z * scales for z in latents]
    s = torch.from_numpy(scales)
    assert torch.allclose(distortion(noisy * s, x * s, channel_weights(scaled)), plain, rtol=1e-4)
    assert torch.allclose(
        channel_weights(latents) / torch.from_numpy(scales.ravel() ** 2), channel_weights(scaled), rtol=1e-4
    )


def test_bounded_spreads_keep_a_gradient_back_into_range() -> None:
    """A spread pushed past its bound must be able to come back: the clamp's gradient
    survives where descent leads inside, and only there."""
    x = torch.tensor([-9.0, 0.0, 9.0], requires_grad=True)
    y = bound(x, -4.0, 4.0)
    assert y.tolist() == [-4.0, 0.0, 4.0]
    y.backward(torch.tensor([-1.0, 1.0, 1.0]))  # descent: up, down, down; all inward
    assert x.grad.tolist() == [-1.0, 1.0, 1.0]
    x.grad = None
    bound(x, -4.0, 4.0).backward(torch.tensor([1.0, 1.0, -1.0]))  # the outer two would go further out
    assert x.grad.tolist() == [0.0, 1.0, 0.0]


def test_identity_transforms_start_at_the_rearranged_latent() -> None:
    """An untrained model with the identity path gives back its latent bit for bit (the
    transforms learn residuals around it); asked for, it is used where the code has room."""
    from latentpress.codecs.glc.params import Architecture, GlcParams

    for channels, stride in ((4, 2), (16, 2), (16, 1)):
        net = GlcModel(Architecture(channels, stride=stride, identity=True))
        x = torch.randn(2, channels, 16, 24)
        assert torch.equal(net.synthesis(net.analysis(x)), x)
    with pytest.raises(ValueError, match="cannot hold"):
        Architecture(16, channels=32, identity=True).check()
    wanted = GlcParams(identity=True)
    assert wanted.architecture(16).identity and wanted.architecture(4).identity
    assert not dataclasses.replace(wanted, channels=32).architecture(16).identity


def test_latent_discriminator_learns_to_tell_blurred_latents_from_real_ones(latents: list[np.ndarray]) -> None:
    from latentpress.codecs.hyperprior.adversarial import Adversary
    from latentpress.codecs.hyperprior.training import Crops

    torch.manual_seed(0)
    adversary = Adversary(latents, learning_rate=1e-3)
    crops = Crops(latents, 16, seed=0)

    def blurred(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    for _ in range(60):
        real = crops.batch(8)
        adversary.update(real, blurred(real))
    real = crops.batch(16)
    # softplus(-logit): below log 2 where the discriminator calls a crop real, above it where fake
    assert adversary.codec_loss(real).mean() < np.log(2) < adversary.codec_loss(blurred(real)).mean()
    fake = blurred(real).requires_grad_(True)
    adversary.codec_loss(fake).sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # its verdict can teach a decoder


def test_adversarial_training_moves_the_model_and_keeps_decoding(
    model: bytes, latents: list[np.ndarray], test_latent: np.ndarray
) -> None:
    from latentpress.codecs.glc.train import ADVERSARIAL_FROM

    codec = get_codec("glc")
    params = dataclasses.replace(codec.params("tiny"), adversarial=0.5)
    statuses = []
    judged = codec.train([item(z, f"{i:016x}") for i, z in enumerate(latents)], params, progress=statuses.append)
    assert judged != model  # the discriminator's verdict reached the networks
    verdicts = [s for s in statuses if s.adversarial is not None]
    assert verdicts and min(s.step for s in verdicts) > ADVERSARIAL_FROM * params.steps
    assert all(0 < s.adversarial < 10 for s in verdicts) and "discriminator loss" in verdicts[-1].summary()
    payload = codec.encode(item(test_latent), dataclasses.replace(params, quality=2.0), judged)
    decoded = codec.decode(payload, DecodeContext(96, 80, "taesd", judged))
    assert decoded.shape == test_latent.shape and np.isfinite(decoded).all()
    assert bitstream.unpack_model(judged)[1].arch == bitstream.unpack_model(model)[1].arch  # nothing of it is stored
    with pytest.raises(CodecError, match="adversarial must be >= 0"):
        dataclasses.replace(params, adversarial=-1.0).validate()
