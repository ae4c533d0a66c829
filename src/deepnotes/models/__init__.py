"""Model families, one per file. Importing this package registers every variant; the look-ups
below are the way in (the registry itself imports no package):

    from deepnotes.models import create_model, list_models, get_model_entry
    model = create_model("resnet18", num_classes=10)

Each file follows the same order: helpers, blocks, the model class, one private builder,
then the registered variants (data, with their published parameter counts).
"""

# registration side effects; fcn, unet: segmentation; vit, swin, pvt: vision transformers; seq2seq, seq2seq_transformer: translation;
# word2vec, fasttext, glove: word vectors; gpt, rnnlm, ngram, bert: language models
from deepnotes.models import (  # noqa: F401
    alexnet,
    bert,
    densenet,
    fasttext,
    fcn,
    glove,
    googlenet,
    gpt,
    lenet,
    mlp,
    ngram,
    pvt,
    resnet,
    rnnlm,
    seq2seq,
    seq2seq_transformer,
    swin,
    unet,
    vgg,
    vit,
    word2vec,
)
from deepnotes.registry import MODELS, ModelEntry, builder_accepts, create_model, get_model_entry, list_models

__all__ = ["MODELS", "ModelEntry", "builder_accepts", "create_model", "get_model_entry", "list_models"]
