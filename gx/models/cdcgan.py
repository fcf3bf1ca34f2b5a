"""cdcgan: conditional DCGAN with deep concatenation of a label branch (28x28, one-hot labels)."""

from __future__ import annotations

from gx.models.blocks import conv, deconv, layer


def build(noise_dim: int = 100, classes: int = 10, leaky_slope: float = 0.01) -> tuple[dict, dict]:
    generator = {
        "inputs": {"z": [noise_dim, 1, 1], "label": {"classes": classes}},
        "init": "dcgan",
        "layers": [
            deconv("x_deconv", 256, 4, 1, 0, bias=False, source="z"),
            layer("x_bn", "batch_norm"),
            layer("x_relu", "relu"),
            layer("y_onehot", "label_map", "label", size=[1, 1]),
            deconv("y_deconv", 256, 4, 1, 0, bias=False),
            layer("y_bn", "batch_norm"),
            layer("y_relu", "relu"),
            layer("joined", "concat", ["x_relu", "y_relu"]),
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
        "inputs": {"image": [1, 28, 28], "label": {"classes": classes}},
        "init": "dcgan",
        "layers": [
            conv("x_conv", 64, 4, 2, 1, source="image"),
            layer("x_lrelu", "leaky_relu", slope=leaky_slope),
            layer("y_map", "label_map", "label", size=[28, 28]),
            conv("y_conv", 64, 4, 2, 1),
            layer("y_lrelu", "leaky_relu", slope=leaky_slope),
            layer("joined", "concat", ["x_lrelu", "y_lrelu"]),
            conv("conv2", 64, 4, 2, 1),
            layer("lrelu2", "leaky_relu", slope=leaky_slope),
            conv("conv3", 128, 3, 2, 1),
            layer("lrelu3", "leaky_relu", slope=leaky_slope),
            conv("conv4", 1, 4, 2, 0),
            layer("probability", "sigmoid"),
        ],
    }
    return generator, discriminator
