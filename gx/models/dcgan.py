"""dcgan: unconditional DCGAN (28x28), no biases, batch norm in both networks."""

from __future__ import annotations

from gx.models.blocks import conv, deconv, layer


def build(noise_dim: int = 100, leaky_slope: float = 0.2) -> tuple[dict, dict]:
    generator = {
        "inputs": {"z": [noise_dim, 1, 1]},
        "init": "dcgan",
        "layers": [
            deconv("deconv1", 256, 4, 1, 0, bias=False),
            layer("bn1", "batch_norm"),
            layer("relu1", "relu"),
            deconv("deconv2", 128, 4, 2, 1, bias=False),
            layer("bn2", "batch_norm"),
            layer("relu2", "relu"),
            deconv("deconv3", 64, 4, 2, 1, bias=False),
            layer("bn3", "batch_norm"),
            layer("relu3", "relu"),
            deconv("deconv4", 1, 4, 2, 3, bias=False),
            layer("image", "tanh"),
        ],
    }
    discriminator = {
        "inputs": {"image": [1, 28, 28]},
        "init": "dcgan",
        "layers": [
            conv("conv1", 64, 4, 2, 1, bias=False),
            layer("bn1", "batch_norm"),
            layer("lrelu1", "leaky_relu", slope=leaky_slope),
            conv("conv2", 128, 4, 2, 1, bias=False),
            layer("bn2", "batch_norm"),
            layer("lrelu2", "leaky_relu", slope=leaky_slope),
            conv("conv3", 256, 3, 2, 1, bias=False),
            layer("bn3", "batch_norm"),
            layer("lrelu3", "leaky_relu", slope=leaky_slope),
            conv("conv4", 1, 4, 1, 0, bias=False),
            layer("probability", "sigmoid"),
        ],
    }
    return generator, discriminator
