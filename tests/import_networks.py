"""Hand-written PyTorch GANs for tests/test_import.py, written as single-file GAN scripts write
them: the four reference networks of benchmarks/handwritten_torch.py, small variants that use
the functional forms, one-hot codes built in forward, the upsampling, pooling, products and
softmax of later GANs, the habits of public GAN code (the multi-GPU branch of the PyTorch DCGAN
example, spectral normalization, forward(z, *args, **kwargs), a discriminator of flat images),
and a mistake per network that gx cannot import."""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from support import REPO_ROOT
from torch import nn
from torch.nn.utils import parametrizations, spectral_norm


def _load_handwritten():
    path = REPO_ROOT / "benchmarks" / "handwritten_torch.py"
    spec = importlib.util.spec_from_file_location("handwritten_torch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HANDWRITTEN = _load_handwritten()
CLASSES = 10


def block(width_in: int, width_out: int, normalize: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
    if normalize:
        layers.append(nn.BatchNorm1d(width_out, eps=1e-3, momentum=0.2))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class OneHotGenerator(nn.Module):
    """z and F.one_hot(labels) joined on features, an MLP of *block() helpers, then
    x.view(-1, C, H, W) and transposed convolutions with output padding."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(*block(16 + CLASSES, 32, normalize=False), *block(32, 8 * 4 * 4))
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.BatchNorm2d(4, eps=1e-3, momentum=0.3)
        self.out = nn.Conv2d(4, 1, 3, padding="same")

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, F.one_hot(labels, CLASSES).float()], 1)
        x = self.stem(x).view(-1, 8, 4, 4)
        x = F.relu(self.norm(self.up(x)))
        return torch.tanh(self.out(x))


class LabelMapDiscriminator(nn.Module):
    """The label's one-hot code expanded to a map and joined on channels, F.leaky_relu,
    functional dropout following the mode, x.view(x.size(0), -1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1 + CLASSES, 6, 4, 2, 1)
        self.norm = nn.BatchNorm2d(6)
        self.score = nn.Linear(6 * 4 * 4, 1)

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = F.one_hot(labels, CLASSES).float().view(-1, CLASSES, 1, 1).expand(-1, -1, 8, 8)
        x = F.leaky_relu(self.norm(self.conv(torch.cat([image, code], 1))), 0.2)
        x = F.dropout(x, 0.3, self.training)
        return torch.sigmoid(self.score(x.view(x.size(0), -1)))


class EmbeddingDiscriminator(nn.Module):
    """nn.Embedding of the label joined on features, nn.Dropout, torch.flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(CLASSES, 5)
        self.model = nn.Sequential(
            nn.Linear(64 + 5, 16), nn.Dropout(0.4), nn.LeakyReLU(0.2), nn.Linear(16, 1)
        )

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((torch.flatten(image, 1), self.embed(labels)), -1))


class TinyGenerator(nn.Module):
    """The unconditional generator of the parity test: small enough to train in milliseconds."""

    def __init__(self, noise: int = 8) -> None:
        super().__init__()
        self.model = nn.Sequential(*block(noise, 32), nn.Linear(32, 64), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        image = self.model(z)
        return image.view(image.size(0), 1, 8, 8)


class TinyDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(64, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(image.view(image.size(0), -1)))


# -- the layers of later GANs: upsampling, pooling, products, softmax ------------------------------


class AcganGenerator(nn.Module):
    """AC-GAN style: the label's embedding times the noise (torch.mul), nearest upsampling by
    nn.Upsample, bilinear by F.interpolate, and a pixel shuffle before the last activation."""

    def __init__(self) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(CLASSES, 16)
        self.l1 = nn.Linear(16, 16 * 4 * 4)
        self.norm = nn.BatchNorm2d(16)
        self.up = nn.Upsample(scale_factor=2)
        self.conv1 = nn.Conv2d(16, 16, 3, stride=1, padding=1)
        self.norm1 = nn.BatchNorm2d(16, 0.8)
        self.conv2 = nn.Conv2d(16, 4, 3, stride=1, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gen_input = torch.mul(self.label_emb(labels), noise)
        out = self.l1(gen_input).view(gen_input.shape[0], 16, 4, 4)
        x = F.leaky_relu(self.norm1(self.conv1(self.up(self.norm(out)))), 0.2)
        x = F.interpolate(x, scale_factor=2, mode="bilinear")
        return torch.tanh(self.shuffle(self.conv2(x)))


class PoolingDiscriminator(nn.Module):
    """A ResNet-style block: average pooling on both paths joined by +, channel dropout as a
    module and as a function, F.avg_pool2d with padding, and a sum over height and width."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, 1, 1)
        self.pool = nn.AvgPool2d(2)
        self.shortcut = nn.Conv2d(1, 8, 1)
        self.drop = nn.Dropout2d(0.3)
        self.score = nn.Linear(8, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.pool(F.relu(self.conv(image))) + self.shortcut(F.avg_pool2d(image, 2))
        h = F.avg_pool2d(self.drop(F.relu(h)), 3, stride=2, padding=1)
        h = F.dropout2d(h, 0.2, self.training)
        return self.score(torch.sum(h, dim=(2, 3)))


class GatedClassifier(nn.Module):
    """Global means (F.adaptive_avg_pool2d, x.mean with keepdim) gate the channels through
    broadcast products (* and x.mul); x.sum([2, 3]) and a class softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 4, 2, 1)
        self.gate = nn.Linear(6, 6)
        self.classes = nn.Linear(6, CLASSES)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv(image), 0.2)
        squeezed = F.adaptive_avg_pool2d(h, 1).view(h.size(0), -1)
        gate = torch.sigmoid(self.gate(squeezed)).view(-1, 6, 1, 1)
        h = h * gate
        h = h.mul(torch.sigmoid(h.mean([2, 3], keepdim=True)))
        return self.softmax(self.classes(h.sum([2, 3])))


class OtherSpellings(nn.Module):
    """Other spellings gx import reads as the same kinds: F.pixel_shuffle, F.avg_pool2d
    by keyword, nn.UpsamplingNearest2d, F.upsample, mode 'nearest-exact', a size computed from
    x.size(), torch.mean / x.sum(dim=...) / torch.sum(keepdim=True), torch.softmax,
    x.softmax, F.softmax over dim -1, x.mul and *."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, 1, 1)
        self.up = nn.UpsamplingNearest2d(scale_factor=2)
        self.fc = nn.Linear(24, 24)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = F.pixel_shuffle(self.conv(image), 2)
        h = self.up(F.avg_pool2d(h, kernel_size=4))
        h = F.upsample(F.avg_pool2d(h, 2), scale_factor=2)
        h = F.interpolate(h, scale_factor=2, mode="nearest-exact")
        h = h.view(h.size(0), h.size(1) * 4, 8, 8)
        pooled = [
            torch.mean(h, (2, 3)),
            h.sum(dim=(-1, -2)),
            torch.sum(h, (2, 3), keepdim=True).flatten(1),
        ]
        features = torch.cat(pooled, 1)
        weights = torch.softmax(self.fc(features), 1)
        return weights.mul(features.softmax(1)) * F.softmax(features, dim=-1)


# -- habits of public GAN code ---------------------------------------------------------------------

NZ, NGF, NDF, NC = 16, 8, 8, 1


class ExampleGenerator(nn.Module):
    """The PyTorch DCGAN example's generator (pytorch/examples, dcgan/main.py), for 16x16
    images: a branch on the device and the GPU count in forward."""

    def __init__(self, ngpu: int = 1) -> None:
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(NGF * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NC, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class ExampleDiscriminator(nn.Module):
    """The DCGAN example's discriminator: the same branch, then output.view(-1, 1).squeeze(1)
    after the final sigmoid."""

    def __init__(self, ngpu: int = 1) -> None:
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output.view(-1, 1).squeeze(1)


class ShapeBranchGenerator(nn.Module):
    """Branches on shapes and dtypes: flat noise viewed as a map, a colour-or-grey head, sizes
    unpacked from x.shape and multiplied out."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(NZ, 8, 4, 1, 0)
        self.head = nn.Conv2d(8, channels, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z.view(-1, z.size(1), 1, 1)
        x = self.head(F.relu(self.up(z)))
        if x.size(1) == 3 or x.dtype != torch.float32:
            return torch.tanh(x)
        batch, channels, height, width = x.shape
        flat = torch.tanh(x.view(batch, channels * height * width))
        return flat.view(-1, channels, height, width)


class SnganDiscriminator(nn.Module):
    """An SNGAN-style discriminator: every convolution and the score spectrally normalized with
    torch.nn.utils.spectral_norm, as most published SNGAN code writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            spectral_norm(nn.Conv2d(3, 8, 3, 1, 1)),
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(8, 16, 4, 2, 1)),
            nn.LeakyReLU(0.1),
        )
        self.score = spectral_norm(nn.Linear(16 * 4 * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x)
        return self.score(h.view(h.size(0), -1))


class ParametrizedSnDiscriminator(nn.Module):
    """The same with torch.nn.utils.parametrizations.spectral_norm (its power iteration runs
    the other way round: refused)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = parametrizations.spectral_norm(nn.Conv2d(3, 8, 3, 1, 1))
        self.score = nn.Linear(8 * 8 * 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(torch.flatten(F.leaky_relu(self.conv(x), 0.1), 1))


class VariadicGenerator(nn.Module):
    """forward(self, z, *args, **kwargs), the extras unused, as in code written for a trainer
    that passes more."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(NZ, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh())

    def forward(self, z: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if kwargs.get("truncation") is not None:
            z = z.clamp(-kwargs["truncation"], kwargs["truncation"])
        return self.model(z).view(z.size(0), 1, 8, 8)


class FlatCganDiscriminator(nn.Module):
    """PyTorch-GAN's cgan discriminator, for 8x8 images: it reads the image flattened and the
    label embedded, joined on features."""

    def __init__(self) -> None:
        super().__init__()
        self.label_embedding = nn.Embedding(CLASSES, CLASSES)
        self.model = nn.Sequential(
            nn.Linear(CLASSES + 64, 32),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(32, 32),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(32, 1),
        )

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d_in = torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), -1)
        return self.model(d_in)


class CganGenerator(nn.Module):
    """PyTorch-GAN's cgan generator, for 8x8 images: it ends in img.view(img.size(0),
    *img_shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(CLASSES, CLASSES)
        self.model = nn.Sequential(*block(NZ + CLASSES, 32, normalize=False), nn.Linear(32, 64))

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        img = torch.tanh(self.model(torch.cat((self.label_emb(labels), noise), -1)))
        return img.view(img.size(0), *(1, 8, 8))


class FeatureDiscriminator(nn.Module):
    """A discriminator of 50 features, which no square image holds."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(50, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score(features))


class NormalizedGenerator(nn.Module):
    """The per-sample norms of image-to-image and WGAN-GP code: nn.LayerNorm over features and
    over a whole (C, H, W) sample, nn.InstanceNorm2d with and without a scale, nn.GroupNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8 * 4 * 4)
        self.fc_norm = nn.LayerNorm(8 * 4 * 4)
        self.up = nn.ConvTranspose2d(8, 6, 4, 2, 1)
        self.up_norm = nn.InstanceNorm2d(6, affine=True, eps=1e-3)
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.conv_norm = nn.GroupNorm(3, 6)
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)
        self.conv2_norm = nn.InstanceNorm2d(4)
        self.sample_norm = nn.LayerNorm([4, 8, 8], eps=1e-4)
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc_norm(self.fc(z))).view(-1, 8, 4, 4)
        x = F.relu(self.up_norm(self.up(x)))
        x = F.leaky_relu(self.conv_norm(self.conv(x)), 0.2)
        x = self.sample_norm(F.relu(self.conv2_norm(self.conv2(x))))
        return torch.tanh(self.out(x))


# -- what gx cannot import ------------------------------------------------------------------------


class Doubled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class WithAutogradFunction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return Doubled.apply(self.fc(z))


class WithBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z)
        if x.mean() > 0:
            return x
        return -x


class WithElu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(8, 4),
            nn.ELU(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class WithBatchBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.size(0) > 1:
            return self.fc(z)
        return self.fc(z).detach()


class WithVariadicLabel(nn.Module):
    """The label comes in through *args: gx binds each --input to a named argument."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(CLASSES, 8)

    def forward(self, z: torch.Tensor, *args) -> torch.Tensor:
        return z * self.embed(args[0])


class WithTwoPowerIterations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = spectral_norm(nn.Linear(8, 4), n_power_iterations=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


class WithSpectralEps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = spectral_norm(nn.Linear(8, 4), eps=1e-6)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


class WithWeightNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = parametrizations.weight_norm(nn.Linear(8, 4))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


class WithElementwiseElu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.norm = nn.LocalResponseNorm(2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.elu(self.fc(z))


class WithLocalResponseNorm(WithElementwiseElu):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(z).view(-1, 4, 2, 2))


class WithDropoutAlwaysOn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.fc(z), 0.5)


class WithUpsampleToSize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.up = nn.Upsample(size=8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(-1, 1, 4, 4))


class WithCornersAligned(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, 1, 4, 4)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class WithPaddingOutOfTheAverage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pool(self.fc(z).view(-1, 1, 4, 4))


class WithConstantFactor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z) * 2


class WithSoftmaxOverWidth(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.fc(z).view(-1, 1, 4, 4), dim=3)


class WithChannelDropoutAlwaysOn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.dropout2d(self.fc(z).view(-1, 4, 2, 2), 0.5)


class WithTrackedInstanceNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = nn.InstanceNorm2d(2, track_running_stats=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(z).view(-1, 2, 2, 2))


class WithLastAxisLayerNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 12)
        self.norm = nn.LayerNorm(4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(z).view(-1, 3, 4))
