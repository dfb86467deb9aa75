"""lipgan: Wasserstein GANs with pluggable Lipschitz strategies."""

__version__ = "0.1.0"
