"""Model families, one per file. Importing this package registers every variant.

Each file follows the same order: helpers, blocks, the model class, one private builder,
then the registered variants (data, with their published parameter counts).
"""

# registration side effects; fcn, unet: segmentation; vit: vision transformers
from deepnotes.models import alexnet, densenet, fcn, googlenet, lenet, mlp, resnet, unet, vgg, vit  # noqa: F401
