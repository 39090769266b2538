"""The restoration GAN (torch). Import the submodules (``networks``, ``losses``, ``train``...) explicitly;
importing this package itself does not import torch."""
