"""The four reference GANs of models.md in plain Jittor, the way the classic Jittor scripts write
them: small jt.Module classes, Jittor's own nn.BatchNorm, nn.BCELoss / nn.MSELoss, jt.optim.Adam
(Jittor's update rule), noise from jt.randn, ``optimizer.step(loss)``.

These are the baselines of benchmarks/compare.py. Each ``step`` is one training iteration and
returns the numbers the scripts print every iteration (d_loss, g_loss and the mean D outputs), so
it syncs as often as gx's step does. One deliberate difference from the original Jittor cgan
script: it never calls ``train()``, which leaves Jittor's Dropout inactive; here the
discriminator is put in training mode so the network computes what gx's (and PyTorch's) does.
"""

from __future__ import annotations

from gx.backends import get_backend

# gx sets Jittor's environment (its oneDNN, no stray nvcc) before Jittor is first imported;
# a caller that already asked gx for a device keeps it (settings already made are left alone).
get_backend("jittor")

import jittor as jt  # noqa: E402
from jittor import nn  # noqa: E402

NOISE = 100
CLASSES = 10


def dcgan_init(module: jt.Module) -> None:
    """The DCGAN paper's N(0, 0.02) weights, as the scripts apply with ``model.apply``."""
    if isinstance(module, (nn.Conv, nn.ConvTranspose, nn.Linear)):
        jt.init.gauss_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            jt.init.zero_(module.bias)
    elif isinstance(module, nn.BatchNorm):
        jt.init.gauss_(module.weight, 1.0, 0.02)
        jt.init.zero_(module.bias)


# -- cdcgan ---------------------------------------------------------------------------------------


class CdcganGenerator(jt.Module):
    def __init__(self) -> None:
        self.deconv1_z = nn.ConvTranspose(NOISE, 256, 4, 1, 0, bias=False)
        self.bn1_z = nn.BatchNorm(256)
        self.deconv1_y = nn.ConvTranspose(CLASSES, 256, 4, 1, 0, bias=False)
        self.bn1_y = nn.BatchNorm(256)
        self.deconv2 = nn.ConvTranspose(512, 128, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm(128)
        self.deconv3 = nn.ConvTranspose(128, 64, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm(64)
        self.deconv4 = nn.ConvTranspose(64, 1, 4, 2, 3, bias=False)

    def execute(self, z: jt.Var, onehot: jt.Var) -> jt.Var:
        x = nn.relu(self.bn1_z(self.deconv1_z(z)))
        y = nn.relu(self.bn1_y(self.deconv1_y(onehot)))
        x = jt.concat([x, y], 1)
        x = nn.relu(self.bn2(self.deconv2(x)))
        x = nn.relu(self.bn3(self.deconv3(x)))
        return jt.tanh(self.deconv4(x))


class CdcganDiscriminator(jt.Module):
    def __init__(self, slope: float = 0.01) -> None:
        self.slope = slope
        self.conv1_x = nn.Conv(1, 64, 4, 2, 1)
        self.conv1_y = nn.Conv(CLASSES, 64, 4, 2, 1)
        self.conv2 = nn.Conv(128, 64, 4, 2, 1)
        self.conv3 = nn.Conv(64, 128, 3, 2, 1)
        self.conv4 = nn.Conv(128, 1, 4, 2, 0)

    def execute(self, image: jt.Var, label_map: jt.Var) -> jt.Var:
        x = nn.leaky_relu(self.conv1_x(image), self.slope)
        y = nn.leaky_relu(self.conv1_y(label_map), self.slope)
        x = jt.concat([x, y], 1)
        x = nn.leaky_relu(self.conv2(x), self.slope)
        x = nn.leaky_relu(self.conv3(x), self.slope)
        return jt.sigmoid(self.conv4(x))


class Cdcgan:
    """D on real (target 1) and on fakes from fresh noise and labels (target 0); then G."""

    def __init__(self) -> None:
        self.generator = CdcganGenerator()
        self.discriminator = CdcganDiscriminator()
        self.generator.apply(dcgan_init)
        self.discriminator.apply(dcgan_init)
        self.criterion = nn.BCELoss()
        self.g_optimizer = jt.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.d_optimizer = jt.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        # The script's lookup tables: label -> one-hot (10,1,1) and label -> label map (10,28,28).
        self.onehot = jt.init.eye(CLASSES).reshape(CLASSES, CLASSES, 1, 1).stop_grad()
        self.fill = self.onehot.broadcast((CLASSES, CLASSES, 28, 28)).clone().stop_grad()

    def step(self, images: jt.Var, labels: jt.Var) -> tuple[float, ...]:
        n = images.shape[0]
        ones, zeros = jt.ones(n), jt.zeros(n)

        real_out = self.discriminator(images, self.fill[labels]).reshape(-1)
        d_real_loss = self.criterion(real_out, ones)
        z = jt.randn(n, NOISE, 1, 1)
        y = jt.randint(0, CLASSES, shape=(n,))
        fakes = self.generator(z, self.onehot[y])
        fake_out = self.discriminator(fakes.detach(), self.fill[y]).reshape(-1)
        d_fake_loss = self.criterion(fake_out, zeros)
        d_loss = d_real_loss + d_fake_loss
        self.d_optimizer.step(d_loss)

        z = jt.randn(n, NOISE, 1, 1)
        y = jt.randint(0, CLASSES, shape=(n,))
        g_out = self.discriminator(self.generator(z, self.onehot[y]), self.fill[y]).reshape(-1)
        g_loss = self.criterion(g_out, ones)
        self.g_optimizer.step(g_loss)
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- dcgan ----------------------------------------------------------------------------------------


class DcganGenerator(jt.Module):
    def __init__(self) -> None:
        self.main = nn.Sequential(
            nn.ConvTranspose(NOISE, 256, 4, 1, 0, bias=False),
            nn.BatchNorm(256),
            nn.ReLU(),
            nn.ConvTranspose(256, 128, 4, 2, 1, bias=False),
            nn.BatchNorm(128),
            nn.ReLU(),
            nn.ConvTranspose(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm(64),
            nn.ReLU(),
            nn.ConvTranspose(64, 1, 4, 2, 3, bias=False),
            nn.Tanh(),
        )

    def execute(self, z: jt.Var) -> jt.Var:
        return self.main(z)


class DcganDiscriminator(jt.Module):
    def __init__(self) -> None:
        self.main = nn.Sequential(
            nn.Conv(1, 64, 4, 2, 1, bias=False),
            nn.BatchNorm(64),
            nn.LeakyReLU(0.2),
            nn.Conv(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm(128),
            nn.LeakyReLU(0.2),
            nn.Conv(128, 256, 3, 2, 1, bias=False),
            nn.BatchNorm(256),
            nn.LeakyReLU(0.2),
            nn.Conv(256, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def execute(self, image: jt.Var) -> jt.Var:
        return self.main(image)


class Dcgan:
    """D on real then on fakes from fresh noise; then G on fresh noise. Adam 1e-3, default betas."""

    def __init__(self) -> None:
        self.generator = DcganGenerator()
        self.discriminator = DcganDiscriminator()
        self.generator.apply(dcgan_init)
        self.discriminator.apply(dcgan_init)
        self.criterion = nn.BCELoss()
        self.g_optimizer = jt.optim.Adam(self.generator.parameters(), lr=1e-3)
        self.d_optimizer = jt.optim.Adam(self.discriminator.parameters(), lr=1e-3)

    def step(self, images: jt.Var, labels: jt.Var | None = None) -> tuple[float, ...]:
        n = images.shape[0]
        ones, zeros = jt.ones(n), jt.zeros(n)

        real_out = self.discriminator(images).reshape(-1)
        d_real_loss = self.criterion(real_out, ones)
        fakes = self.generator(jt.randn(n, NOISE, 1, 1))
        fake_out = self.discriminator(fakes.detach()).reshape(-1)
        d_fake_loss = self.criterion(fake_out, zeros)
        d_loss = d_real_loss + d_fake_loss
        self.d_optimizer.step(d_loss)

        fakes = self.generator(jt.randn(n, NOISE, 1, 1))
        g_loss = self.criterion(self.discriminator(fakes).reshape(-1), ones)
        self.g_optimizer.step(g_loss)
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- cgan -----------------------------------------------------------------------------------------


def mlp_block(width_in: int, width_out: int, normalize: bool = True) -> list[jt.Module]:
    """Linear, BatchNorm1d(eps=0.8) as the original passes it, LeakyReLU(0.2)."""
    layers: list[jt.Module] = [nn.Linear(width_in, width_out)]
    if normalize:
        layers.append(nn.BatchNorm1d(width_out, 0.8))
    layers.append(nn.LeakyReLU(0.2))
    return layers


class CganGenerator(jt.Module):
    def __init__(self, size: int = 32) -> None:
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

    def execute(self, z: jt.Var, labels: jt.Var) -> jt.Var:
        image = self.model(jt.concat((self.label_emb(labels), z), dim=1))
        return image.view((image.shape[0], 1, self.size, self.size))


class CganDiscriminator(jt.Module):
    def __init__(self, size: int = 32) -> None:
        self.label_embedding = nn.Embedding(CLASSES, CLASSES)
        self.model = nn.Sequential(
            nn.Linear(CLASSES + size * size, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 1),
        )

    def execute(self, image: jt.Var, labels: jt.Var) -> jt.Var:
        joined = jt.concat((image.view((image.shape[0], -1)), self.label_embedding(labels)), dim=1)
        return self.model(joined)


class Cgan:
    """Least squares: G first on fresh noise and labels; then D on real and the detached fakes."""

    def __init__(self) -> None:
        self.generator = CganGenerator()
        self.discriminator = CganDiscriminator()
        self.discriminator.train()  # active dropout, as gx and PyTorch train it
        self.criterion = nn.MSELoss()
        self.g_optimizer = jt.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.d_optimizer = jt.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )

    def step(self, images: jt.Var, labels: jt.Var) -> tuple[float, ...]:
        n = images.shape[0]
        valid, fake = jt.ones((n, 1)), jt.zeros((n, 1))

        z = jt.randn(n, NOISE)
        gen_labels = jt.randint(0, CLASSES, shape=(n,))
        gen_images = self.generator(z, gen_labels)
        g_loss = self.criterion(self.discriminator(gen_images, gen_labels), valid)
        self.g_optimizer.step(g_loss)

        real_out = self.discriminator(images, labels)
        fake_out = self.discriminator(gen_images.detach(), gen_labels)
        d_loss = (self.criterion(real_out, valid) + self.criterion(fake_out, fake)) / 2
        self.d_optimizer.step(d_loss)
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


# -- gan ------------------------------------------------------------------------------------------


class GanGenerator(jt.Module):
    def __init__(self, size: int = 28) -> None:
        self.size = size
        self.model = nn.Sequential(
            *mlp_block(NOISE, 128, normalize=False),
            *mlp_block(128, 256),
            *mlp_block(256, 512),
            *mlp_block(512, 1024),
            nn.Linear(1024, size * size),
            nn.Tanh(),
        )

    def execute(self, z: jt.Var) -> jt.Var:
        image = self.model(z)
        return image.view((image.shape[0], 1, self.size, self.size))


class GanDiscriminator(jt.Module):
    def __init__(self, size: int = 28) -> None:
        self.model = nn.Sequential(
            nn.Linear(size * size, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def execute(self, image: jt.Var) -> jt.Var:
        return self.model(image.view((image.shape[0], -1)))


class Gan:
    """G first on fresh noise; then D on real and the detached fakes, d_loss = (real + fake) / 2."""

    def __init__(self) -> None:
        self.generator = GanGenerator()
        self.discriminator = GanDiscriminator()
        self.criterion = nn.BCELoss()
        self.g_optimizer = jt.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.d_optimizer = jt.optim.Adam(
            self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )

    def step(self, images: jt.Var, labels: jt.Var | None = None) -> tuple[float, ...]:
        n = images.shape[0]
        valid, fake = jt.ones((n, 1)), jt.zeros((n, 1))

        gen_images = self.generator(jt.randn(n, NOISE))
        g_loss = self.criterion(self.discriminator(gen_images), valid)
        self.g_optimizer.step(g_loss)

        real_out = self.discriminator(images)
        fake_out = self.discriminator(gen_images.detach())
        d_loss = (self.criterion(real_out, valid) + self.criterion(fake_out, fake)) / 2
        self.d_optimizer.step(d_loss)
        return d_loss.item(), g_loss.item(), real_out.mean().item(), fake_out.mean().item()


MODELS = {"cdcgan": Cdcgan, "dcgan": Dcgan, "cgan": Cgan, "gan": Gan}


def build(name: str, device: str) -> Cdcgan | Dcgan | Cgan | Gan:
    """Jittor picks its device globally (jt.flags.use_cuda, set by gx's backend); ``device`` is
    accepted so both hand-written modules are built the same way."""
    return MODELS[name]()
