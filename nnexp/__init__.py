"""nnexp: neural-network experiments from the command line."""

from nnexp import openmp as _openmp

_openmp.apply()  # before any nnexp module imports torch: how OpenMP's idle threads wait (nnexp/openmp.py)

__version__ = "0.1.0"
