"""optimlab: a PyTorch library and laboratory for the optimization algorithms of deep learning."""

__version__ = "0.1.0"
