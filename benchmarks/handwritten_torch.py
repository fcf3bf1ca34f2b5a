"""The four reference GANs of models.md in plain PyTorch, the way the classic single-file scripts
write them: small nn.Module classes, nn.BCELoss / nn.MSELoss, torch.optim.Adam, noise from
torch.randn, fakes .detach()-ed for the discriminator.

These are the baselines of benchmarks/compare.py. Each ``step`` is one training iteration of its
script and returns the numbers those scripts log every iteration (the PyTorch DCGAN example's
errD, errG, D(x), D(G(z))), so it syncs with the device as often as gx's step does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NOISE = 100
CLASSES = 10


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's N(0, 0.02) weights, as the scripts apply with ``model.apply``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# -- cdcgan ---------------------------------------------------------------------------------------


class CdcganGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.deconv1_z = nn.ConvTranspose2d(NOISE, 256, 4, 1, 0, bias=False)
        self.bn1_z = nn.BatchNorm2d(256)
        self.deconv1_y = nn.ConvTranspose2d(CLASSES, 256, 4, 1, 0, bias=False)
        self.bn1_y = nn.BatchNorm2d(256)
        self.deconv2 = nn.ConvTranspose2d(512, 128, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(128)
        self.deconv3 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.deconv4 = nn.ConvTranspose2d(64, 1, 4, 2, 3, bias=False)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1_z(self.deconv1_z(z)))
        y = F.relu(self.bn1_y(self.deconv1_y(onehot)))
        x = torch.cat([x, y], 1)
        x = F.relu(self.bn2(self.deconv2(x)))
        x = F.relu(self.bn3(self.deconv3(x)))
        return torch.tanh(self.deconv4(x))


class CdcganDiscriminator(nn.Module):
    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = slope
        self.conv1_x = nn.Conv2d(1, 64, 4, 2, 1)
        self.conv1_y = nn.Conv2d(CLASSES, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(128, 64, 4, 2, 1)
        self.conv3 = nn.Conv2d(64, 128, 3, 2, 1)
        self.conv4 = nn.Conv2d(128, 1, 4, 2, 0)

    def forward(self, image: torch.Tensor, label_map: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1_x(image), self.slope)
        y = F.leaky_relu(self.conv1_y(label_map), self.slope)
        x = torch.cat([x, y], 1)
        x = F.leaky_relu(self.conv2(x), self.slope)
        x = F.leaky_relu(self.conv3(x), self.slope)
        return torch.sigmoid(self.conv4(x))


class Cdcgan:
    """D on real (target 1) and on fakes from fresh noise and labels (target 0); then G."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.generator = CdcganGenerator().to(device)
        self.discriminator = CdcganDiscriminator().to(device)
        self.generator.apply(dcgan_init)
        self.discriminator.apply(dcgan_init)
        self.criterion = nn.BCELoss()
        self.g_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        # The script's lookup tables: label -> one-hot (10,1,1) and label -> label map (10,28,28).
        eye = torch.eye(CLASSES, device=device)
        self.onehot = eye.view(CLASSES, CLASSES, 1, 1)
        self.fill = self.onehot.expand(CLASSES, CLASSES, 28, 28).contiguous()

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, ...]:
        n = images.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)

        self.d_optimizer.zero_grad()
        real_out = self.discriminator(images, self.fill[labels]).squeeze()
        d_real_loss = self.criterion(real_out, ones)
        z = torch.randn(n, NOISE, 1, 1, device=self.device)
        y = torch.randint(0, CLASSES, (n,), device=self.device)
        fakes = self.generator(z, self.onehot[y])
        fake_out = self.discriminator(fakes.detach(), self.fill[y]).squeeze()
        d_fake_loss = self.criterion(fake_out, zeros)
        d_loss = d_real_loss + d_fake_loss
        d_loss.backward()
        self.d_optimizer.step()

        self.g_optimizer.zero_grad()
        z = torch.randn(n, NOISE, 1, 1, device=self.device)
        y = torch.randint(0, CLASSES, (n,), device=self.device)
        g_out = self.discriminator(self.generator(z, self.onehot[y]), self.fill[y]).squeeze()
        g_loss = self.criterion(g_out, ones)
        g_loss.backward()
        self.g_optimizer.step()
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- dcgan ----------------------------------------------------------------------------------------


class DcganGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NOISE, 256, 4, 1, 0, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(True),
            nn.ConvTranspose2d(64, 1, 4, 2, 3, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class DcganDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 256, 3, 2, 1, bias=False),
            nn.BatchNorm2d(256),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(256, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.main(image)


class Dcgan:
    """D on real then on fakes from fresh noise; then G on fresh noise. Adam 1e-3, default betas."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.generator = DcganGenerator().to(device)
        self.discriminator = DcganDiscriminator().to(device)
        self.generator.apply(dcgan_init)
        self.discriminator.apply(dcgan_init)
        self.criterion = nn.BCELoss()
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=1e-3)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=1e-3)

    def step(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[float, ...]:
        n = images.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)

        self.d_optimizer.zero_grad()
        real_out = self.discriminator(images).view(-1)
        d_real_loss = self.criterion(real_out, ones)
        fakes = self.generator(torch.randn(n, NOISE, 1, 1, device=self.device))
        fake_out = self.discriminator(fakes.detach()).view(-1)
        d_fake_loss = self.criterion(fake_out, zeros)
        d_loss = d_real_loss + d_fake_loss
        d_loss.backward()
        self.d_optimizer.step()

        self.g_optimizer.zero_grad()
        fakes = self.generator(torch.randn(n, NOISE, 1, 1, device=self.device))
        g_loss = self.criterion(self.discriminator(fakes).view(-1), ones)
        g_loss.backward()
        self.g_optimizer.step()
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- cgan -----------------------------------------------------------------------------------------


def mlp_block(width_in: int, width_out: int, normalize: bool = True) -> list[nn.Module]:
    """Linear, BatchNorm1d(eps=0.8) as the original passes it, LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
    if normalize:
        layers.append(nn.BatchNorm1d(width_out, 0.8))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class CganGenerator(nn.Module):
    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.size = size
        self.label_emb = nn.Embedding(CLASSES, CLASSES)
        self.model = nn.Sequential(
            *mlp_block(NOISE + CLASSES, 128, normalize=False),
            *mlp_block(128, 256),
            *mlp_block(256, 512),
            *mlp_block(512, 1024),
            nn.Linear(1024, size * size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        image = self.model(torch.cat((self.label_emb(labels), z), -1))
        return image.view(image.size(0), 1, self.size, self.size)


class CganDiscriminator(nn.Module):
    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.label_embedding = nn.Embedding(CLASSES, CLASSES)
        self.model = nn.Sequential(
            nn.Linear(CLASSES + size * size, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        joined = torch.cat((image.view(image.size(0), -1), self.label_embedding(labels)), -1)
        return self.model(joined)


class Cgan:
    """Least squares: G first on fresh noise and labels; then D on real and the detached fakes."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.generator = CganGenerator().to(device)
        self.discriminator = CganDiscriminator().to(device)
        self.criterion = nn.MSELoss()
        self.g_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, ...]:
        n = images.shape[0]
        valid = torch.ones(n, 1, device=self.device)
        fake = torch.zeros(n, 1, device=self.device)

        self.g_optimizer.zero_grad()
        z = torch.randn(n, NOISE, device=self.device)
        gen_labels = torch.randint(0, CLASSES, (n,), device=self.device)
        gen_images = self.generator(z, gen_labels)
        g_loss = self.criterion(self.discriminator(gen_images, gen_labels), valid)
        g_loss.backward()
        self.g_optimizer.step()

        self.d_optimizer.zero_grad()
        real_out = self.discriminator(images, labels)
        fake_out = self.discriminator(gen_images.detach(), gen_labels)
        d_loss = (self.criterion(real_out, valid) + self.criterion(fake_out, fake)) / 2
        d_loss.backward()
        self.d_optimizer.step()
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- gan ------------------------------------------------------------------------------------------


class GanGenerator(nn.Module):
    def __init__(self, size: int = 28) -> None:
        super().__init__()
        self.size = size
        self.model = nn.Sequential(
            *mlp_block(NOISE, 128, normalize=False),
            *mlp_block(128, 256),
            *mlp_block(256, 512),
            *mlp_block(512, 1024),
            nn.Linear(1024, size * size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        image = self.model(z)
        return image.view(image.size(0), 1, self.size, self.size)


class GanDiscriminator(nn.Module):
    def __init__(self, size: int = 28) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(size * size, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image.view(image.size(0), -1))


class Gan:
    """G first on fresh noise; then D on real and the detached fakes, d_loss = (real + fake) / 2."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.generator = GanGenerator().to(device)
        self.discriminator = GanDiscriminator().to(device)
        self.criterion = nn.BCELoss()
        self.g_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )

    def step(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[float, ...]:
        n = images.shape[0]
        valid = torch.ones(n, 1, device=self.device)
        fake = torch.zeros(n, 1, device=self.device)

        self.g_optimizer.zero_grad()
        gen_images = self.generator(torch.randn(n, NOISE, device=self.device))
        g_loss = self.criterion(self.discriminator(gen_images), valid)
        g_loss.backward()
        self.g_optimizer.step()

        self.d_optimizer.zero_grad()
        real_out = self.discriminator(images)
        fake_out = self.discriminator(gen_images.detach())
        d_loss = (self.criterion(real_out, valid) + self.criterion(fake_out, fake)) / 2
        d_loss.backward()
        self.d_optimizer.step()
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


MODELS = {"cdcgan": Cdcgan, "dcgan": Dcgan, "cgan": Cgan, "gan": Gan}


def build(name: str, device: str) -> Cdcgan | Dcgan | Cgan | Gan:
    return MODELS[name](torch.device(device))
