"""EnResNet: noise-injected PreAct ResNets averaged as an ensemble (Feynman-Kac formalism).

Wang, Yuan, Shi, Osher, "ResNets Ensemble via the Feynman-Kac Formalism to Improve Natural and
Robust Accuracies", NeurIPS 2019 (arXiv 1811.10745); used with RGSM / RVSM by Dinh et al., "Sparsity
Meets Robustness", arXiv 2003.00631. Each residual block computes::

    out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x)
    out = out + noise_coef * std(out) * N(0, I)          (std over the whole batch tensor)

and the ensemble averages the logits of ``num_ensembles`` independently parameterised members:
``f(x) = (1/M) sum_m f_m(x)``.

Noise modes: the reference code (BaoWangMath/EnResNet, ``resnet_cifar.py``) injects the noise in
training *and* at test time (``"always"``, our default, so accuracies match the paper's setting). Use
``"train"`` for a deterministic model at inference (e.g. for ONNX / TVM export, where a random op is
unwanted) or ``"off"`` for the plain PreAct ResNet ensemble. ``set_noise_mode`` switches a built model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compress.models.registry import register_model

NOISE_MODES = ("always", "train", "off")


def _check_noise_mode(mode: str) -> str:
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown noise_mode {mode!r}; allowed: {', '.join(NOISE_MODES)}")
    return mode


class NoiseInjection(nn.Module):
    """``x + noise_coef * std(x) * N(0, I)`` (EnResNet's diffusion term).

    Args:
        noise_coef: Initial coefficient (reference value 0.1), ``>= 0``.
        trainable: Learn ``noise_coef`` as a parameter instead of keeping it fixed (a buffer).
        noise_mode: ``"always"`` (train and eval), ``"train"`` (training mode only) or ``"off"``.
    """

    def __init__(self, *, noise_coef: float, trainable: bool, noise_mode: str) -> None:
        super().__init__()
        if noise_coef < 0:
            raise ValueError(f"noise_coef must be >= 0; got noise_coef={noise_coef}")
        self.noise_mode = _check_noise_mode(noise_mode)
        coef = torch.tensor(float(noise_coef))
        if trainable:
            self.noise_coef = nn.Parameter(coef)
        else:
            self.register_buffer("noise_coef", coef)

    def active(self) -> bool:
        return self.noise_mode == "always" or (self.noise_mode == "train" and self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active():
            return x
        return x + self.noise_coef * torch.std(x) * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"noise_coef={float(self.noise_coef):g}, noise_mode={self.noise_mode!r}"


class PreActBlock(nn.Module):
    """PreAct basic block (He et al., ECCV 2016) with bias-free 3x3 convs, then noise injection."""

    def __init__(self, in_planes: int, planes: int, *, stride: int, noise: NoiseInjection) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        residual = x if self.downsample is None else self.downsample(out)
        out = self.conv2(self.relu(self.bn2(self.conv1(out))))
        return self.noise(out + residual)


class PreActResNet(nn.Module):
    """One ensemble member: stem conv, three stages of ``PreActBlock``, BN-ReLU, global pool, linear."""

    def __init__(
        self,
        *,
        blocks: tuple[int, ...],
        widths: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        noise_coef: float,
        trainable_noise: bool,
        noise_mode: str,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ValueError(f"blocks and widths must be equally long with blocks >= 1; got {blocks}, {widths}")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        stages, in_planes = [], widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            layers = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                noise = NoiseInjection(noise_coef=noise_coef, trainable=trainable_noise, noise_mode=noise_mode)
                layers.append(PreActBlock(in_planes, width, stride=stride, noise=noise))
                in_planes = width
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn(self.layers(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(out), 1))


def _init_weights(model: nn.Module) -> None:
    """Reference init: conv ~ N(0, 2 / (k*k*out)), BN weight 1 and bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class EnsembleNet(nn.Module):
    """Average of member logits: ``f(x) = (1/M) sum_m f_m(x)`` (EnResNet's ensemble)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member; got num_ensembles=0")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


def set_noise_mode(model: nn.Module, mode: str) -> None:
    """Set ``noise_mode`` (``"always"``, ``"train"``, ``"off"``) of every ``NoiseInjection`` in ``model``."""
    mode = _check_noise_mode(mode)
    for module in model.modules():
        if isinstance(module, NoiseInjection):
            module.noise_mode = mode


def build_enresnet(
    *,
    blocks: tuple[int, ...],
    widths: tuple[int, ...],
    in_channels: int,
    num_classes: int,
    num_ensembles: int,
    noise_coef: float,
    trainable_noise: bool,
    noise_mode: str,
) -> EnsembleNet:
    """An ensemble of ``num_ensembles`` noise-injected PreAct ResNets (see module docstring)."""
    if num_ensembles < 1:
        raise ValueError(f"num_ensembles must be >= 1; got num_ensembles={num_ensembles}")
    member_kwargs = dict(
        blocks=blocks, widths=widths, in_channels=in_channels, num_classes=num_classes,
        noise_coef=noise_coef, trainable_noise=trainable_noise, noise_mode=noise_mode,
    )
    return EnsembleNet([PreActResNet(**member_kwargs) for _ in range(num_ensembles)])


def enresnet_variant(*, name: str, blocks: tuple[int, ...], in_channels: int, doc: str):
    """A model factory for one EnResNet depth (widths 16/32/64); ``in_channels`` is its default."""
    default_in_channels = in_channels

    def factory(
        *,
        num_classes: int = 10,
        in_channels: int = default_in_channels,
        num_ensembles: int = 2,
        noise_coef: float = 0.1,
        trainable_noise: bool = False,
        noise_mode: str = "always",
    ) -> nn.Module:
        return build_enresnet(
            blocks=blocks, widths=(16, 32, 64), in_channels=in_channels, num_classes=num_classes,
            num_ensembles=num_ensembles, noise_coef=noise_coef, trainable_noise=trainable_noise, noise_mode=noise_mode,
        )

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


enresnet20 = register_model("enresnet20", input_shape=(3, 32, 32))(
    enresnet_variant(
        name="enresnet20", blocks=(3, 3, 3), in_channels=3,
        doc="En{M}ResNet20 for CIFAR-10: PreAct ResNet-20 ([3, 3, 3] blocks, widths 16/32/64) x M members.",
    )
)

enresnet_mnist = register_model("enresnet-mnist", input_shape=(1, 28, 28))(
    enresnet_variant(
        name="enresnet_mnist", blocks=(1, 1, 1), in_channels=1,
        doc="Small EnResNet for 1x28x28 CPU experiments: PreAct ResNet-8 ([1, 1, 1] blocks, 16/32/64) x M.",
    )
)
