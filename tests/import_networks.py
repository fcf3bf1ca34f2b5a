"""Hand-written PyTorch GANs for tests/test_import.py, written as single-file GAN scripts write
them: the four reference networks of benchmarks/handwritten_torch.py, and small variants that
use the functional forms, one-hot codes built in forward, and a mistake per network that gx
cannot import."""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from support import REPO_ROOT
from torch import nn


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
        self.main = nn.Sequential(nn.Linear(8, 4), nn.ELU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class WithDropoutAlwaysOn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.fc(z), 0.5)
