"""Model families, one per file. Importing this package registers every variant.

Each file follows the same order: helpers, blocks, the model class, one private builder,
then the registered variants (data, with their published parameter counts).
"""

from deepnotes.models import alexnet, densenet, googlenet, lenet, mlp, resnet, vgg  # noqa: F401  (registration side effects)
