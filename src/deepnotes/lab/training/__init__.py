"""Chapter: training neural networks. activations.py (C05, C06, C10, C11), init.py (C07-C09),
normalization.py: input normalization, BatchNorm, dropout (C12-C14), optimization.py: learning
rate, momentum, AdaGrad/RMSProp (C15-C17), pca.py (C46)."""
