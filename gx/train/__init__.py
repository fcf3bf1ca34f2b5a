"""Training: one GAN trainer for both backends (gan.py), gx run and its run folders (run.py)."""
