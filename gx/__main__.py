"""``python -m gx``: the command line as launchers start it (torchrun -m gx, mpirun -m gx)."""

from gx.cli import entry_point

entry_point()
