"""cgan: conditional GAN with label embeddings (MLP, 32x32), the Jittor warm-up competition model.

``bn_eps`` is 0.8 because the original passes 0.8 as BatchNorm1d's second positional argument,
which is eps, not momentum; gx keeps that value so the network is reproduced as published.
"""

from __future__ import annotations

from gx.models.blocks import layer, linear, mlp_hidden


def build(
    noise_dim: int = 100,
    classes: int = 10,
    image_size: int = 32,
    bn_eps: float = 0.8,
    dropout: float = 0.4,
) -> tuple[dict, dict]:
    pixels = image_size * image_size
    generator = {
        "inputs": {"z": [noise_dim], "label": {"classes": classes}},
        "layers": [
            layer("label_emb", "embedding", "label", dim=classes),
            layer("joined", "concat", ["label_emb", "z"]),
            linear("fc1", 128),
            layer("act1", "leaky_relu", slope=0.2),
            *mlp_hidden(bn_eps),
            linear("fc5", pixels),
            layer("tanh", "tanh"),
            layer("image", "reshape", shape=[1, image_size, image_size]),
        ],
    }
    discriminator = {
        "inputs": {"image": [1, image_size, image_size], "label": {"classes": classes}},
        "layers": [
            layer("flat", "flatten", "image"),
            layer("label_emb", "embedding", "label", dim=classes),
            layer("joined", "concat", ["flat", "label_emb"]),
            linear("fc1", 512),
            layer("act1", "leaky_relu", slope=0.2),
            linear("fc2", 512),
            layer("drop2", "dropout", p=dropout),
            layer("act2", "leaky_relu", slope=0.2),
            linear("fc3", 512),
            layer("drop3", "dropout", p=dropout),
            layer("act3", "leaky_relu", slope=0.2),
            linear("score", 1),
        ],
    }
    return generator, discriminator
