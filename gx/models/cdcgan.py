"""cdcgan: conditional DCGAN with deep concatenation of a label branch (28x28, one-hot labels).

The defaults are the seed network of models.md exactly. The discriminator options are what the
tuned flagship (experiments/cdcgan.yaml) changes; each default is the seed's value:

- ``leaky_slope``: the discriminator's LeakyReLU slope (seed: PyTorch's default 0.01);
- ``d_batch_norm``: batch norm after the two convolutions behind the concat (seed: none);
- ``d_width``: channels of the first convolution behind the concat; the next has twice as many
  (seed: 64, so 64 and 128);
- ``d_dropout``: dropout probability after each of those two LeakyReLUs (seed: 0, none);
- ``g_bn_eps``: eps of the generator's batch norms (seed: PyTorch's default 1e-5);
- ``d_projection``: add a projection term (the ``projection`` layer: the inner product of a
  learned class vector with D's last features, flattened) to D's score, so the label conditions
  D twice: early through the label maps and at the end through the projection (seed: false);
- ``d_spectral_norm``: spectral normalization of every D convolution (seed: false);
- ``d_classifier``: class logits from D's last features, after its score (D's output: 1 + classes
  values), for the auxiliary-classifier loss (``train.class_loss``; seed: false);
- ``d_output``: ``probability`` (a final sigmoid, for the bce and mse losses; the seed) or
  ``logit`` (D's raw score, for the hinge loss).

``channels`` (1: grayscale, as the seed; 3: RGB) is the images' channel count, for training on
colour data.
"""

from __future__ import annotations

from gx.errors import GxError
from gx.models.blocks import Entry, conv, deconv, layer


def build(
    noise_dim: int = 100,
    classes: int = 10,
    leaky_slope: float = 0.01,
    d_batch_norm: bool = False,
    d_width: int = 64,
    d_dropout: float = 0.0,
    g_bn_eps: float = 1e-5,
    channels: int = 1,
    d_projection: bool = False,
    d_spectral_norm: bool = False,
    d_classifier: bool = False,
    d_output: str = "probability",
) -> tuple[dict, dict]:
    if d_output not in ("probability", "logit"):
        raise GxError(
            f"model 'cdcgan': option 'd_output' must be probability or logit, got {d_output!r}"
        )
    generator = {
        "inputs": {"z": [noise_dim, 1, 1], "label": {"classes": classes}},
        "init": "dcgan",
        "layers": [
            deconv("x_deconv", 256, 4, 1, 0, bias=False, source="z"),
            layer("x_bn", "batch_norm", eps=g_bn_eps),
            layer("x_relu", "relu"),
            layer("y_onehot", "label_map", "label", size=[1, 1]),
            deconv("y_deconv", 256, 4, 1, 0, bias=False),
            layer("y_bn", "batch_norm", eps=g_bn_eps),
            layer("y_relu", "relu"),
            layer("joined", "concat", ["x_relu", "y_relu"]),
            deconv("deconv2", 128, 4, 2, 1, bias=False),
            layer("bn2", "batch_norm", eps=g_bn_eps),
            layer("relu2", "relu"),
            deconv("deconv3", 64, 4, 2, 1, bias=False),
            layer("bn3", "batch_norm", eps=g_bn_eps),
            layer("relu3", "relu"),
            deconv("deconv4", channels, 4, 2, 3, bias=False),
            layer("image", "tanh"),
        ],
    }

    def behind_concat(index: int, out: int, kernel: int) -> list[Entry]:
        """conv -> [batch norm] -> LeakyReLU -> [dropout]: the discriminator after the concat."""
        entries = [conv(f"conv{index}", out, kernel, 2, 1, spectral_norm=d_spectral_norm)]
        if d_batch_norm:
            entries.append(layer(f"bn{index}", "batch_norm"))
        entries.append(layer(f"lrelu{index}", "leaky_relu", slope=leaky_slope))
        if d_dropout > 0:
            entries.append(layer(f"dropout{index}", "dropout", p=d_dropout))
        return entries

    layers: list[Entry] = [
        conv("x_conv", 64, 4, 2, 1, source="image", spectral_norm=d_spectral_norm),
        layer("x_lrelu", "leaky_relu", slope=leaky_slope),
        layer("y_map", "label_map", "label", size=[28, 28]),
        conv("y_conv", 64, 4, 2, 1, spectral_norm=d_spectral_norm),
        layer("y_lrelu", "leaky_relu", slope=leaky_slope),
        layer("joined", "concat", ["x_lrelu", "y_lrelu"]),
        *behind_concat(2, d_width, 4),
        *behind_concat(3, 2 * d_width, 3),
        conv("conv4", 1, 4, 2, 0, spectral_norm=d_spectral_norm),
    ]
    if d_projection or d_classifier:
        features = layers[-2]["name"]  # the last LeakyReLU (or its dropout)
        layers += [layer("score", "flatten", "conv4"), layer("features", "flatten", features)]
    if d_projection:
        layers += [
            layer("class_term", "projection", ["features", "label"]),
            layer("logit", "add", ["score", "class_term"]),
        ]
    if d_classifier:
        layers += [
            layer("class_logits", "linear", "features", out=classes),
            layer("scores", "concat", ["logit" if d_projection else "score", "class_logits"]),
        ]
    if d_output == "probability":
        layers.append(layer("probability", "sigmoid"))
    discriminator = {
        "inputs": {"image": [channels, 28, 28], "label": {"classes": classes}},
        "init": "dcgan",
        "layers": layers,
    }
    return generator, discriminator
