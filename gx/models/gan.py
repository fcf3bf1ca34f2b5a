"""gan: the vanilla MLP GAN, with BatchNorm1d(eps=0.8) in the generator as in the original."""

from __future__ import annotations

from gx.models.blocks import layer, linear, mlp_hidden


def build(noise_dim: int = 100, image_size: int = 28, bn_eps: float = 0.8) -> tuple[dict, dict]:
    pixels = image_size * image_size
    generator = {
        "inputs": {"z": [noise_dim]},
        "layers": [
            linear("fc1", 128),
            layer("act1", "leaky_relu", slope=0.2),
            *mlp_hidden(bn_eps),
            linear("fc5", pixels),
            layer("tanh", "tanh"),
            layer("image", "reshape", shape=[1, image_size, image_size]),
        ],
    }
    discriminator = {
        "inputs": {"image": [1, image_size, image_size]},
        "layers": [
            layer("flat", "flatten"),
            linear("fc1", 512),
            layer("act1", "leaky_relu", slope=0.2),
            linear("fc2", 256),
            layer("act2", "leaky_relu", slope=0.2),
            linear("score", 1),
            layer("probability", "sigmoid"),
        ],
    }
    return generator, discriminator
