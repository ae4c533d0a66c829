"""Chapter: attention and the Vision Transformer. self_attention.py: patches as tokens,
permutation equivariance, the 1/sqrt(d_k) scale, the causal mask, heads, a global receptive
field from the first layer (C29-C34)."""
