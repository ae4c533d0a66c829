"""Chapter: looking inside and breaking CNNs. inside.py: augmentation, linear-classifier
templates, CAM / Grad-CAM, adversarial examples, global average pooling (C21-C24, C47)."""
