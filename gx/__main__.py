"""``python -m gx``: the command line, as launchers start it (torchrun -m gx, mpirun python -m gx)."""

from gx.cli import entry_point

entry_point()
