"""Chapter: dense prediction. fcn.py: a classifier convolutionalized is a sliding window (C25);
a transposed convolution upsamples but does not invert (C48)."""
