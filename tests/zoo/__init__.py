"""Hand-written model zoo for the compile tests (torchvision does not install beside our torch).

Each architecture follows its paper's layer list with random weights; ``width`` scales every channel
count (rounded to a multiple of 8) and ``depth`` the repeats of each stage (EfficientNet's compound
scaling, at least one block per stage), so CI can compile small versions that keep every operator.
:data:`ZOO` maps a kebab-case name to a factory ``(width=, depth=, image_size=, num_classes=) -> nn.Module``.
"""

from tests.zoo.classic import squeezenet1_1, vgg11_bn
from tests.zoo.densenet import densenet_style
from tests.zoo.efficientnet import efficientnet_b0
from tests.zoo.mobilenet import mobilenet_v2, mobilenet_v3_small
from tests.zoo.resnet import resnet18, resnet50
from tests.zoo.shufflenet import shufflenet_v2
from tests.zoo.vit import tiny_vit

ZOO = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet-v2": mobilenet_v2,
    "mobilenet-v3-small": mobilenet_v3_small,
    "efficientnet-b0": efficientnet_b0,
    "shufflenet-v2": shufflenet_v2,
    "squeezenet1.1": squeezenet1_1,
    "vgg11-bn": vgg11_bn,
    "densenet-style": densenet_style,
    "tiny-vit": tiny_vit,
}


def create(name: str, **options):
    """Build zoo model ``name`` in eval mode (BatchNorm statistics randomised so folding matters)."""
    import torch

    model = ZOO[name](**options)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model.eval()
