"""gx: write a GAN once as a backend-neutral spec, train it on PyTorch or Jittor.

Importing gx imports neither framework; a backend is imported only when it is asked for.
"""

__version__ = "0.1.0"
