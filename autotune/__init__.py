"""autotune: hyperparameter search for training programs on HPC systems."""

__version__ = "0.1.0"
