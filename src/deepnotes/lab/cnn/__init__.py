"""Chapter: convolutional networks. layers.py: weight sharing, receptive fields, stacked 3x3 and
1x1 convolutions, skip connections (C01-C04, C19); depth.py: the degradation of deep plain nets
(C18); transfer.py: transfer by retraining the head (C20)."""
