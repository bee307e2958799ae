"""nnexp: neural-network experiments from the command line, and from Python: ``nnexp.train``, ``nnexp.sweep``,
``nnexp.report`` (nnexp/api.py)."""

from nnexp import openmp as _openmp

_openmp.apply()  # before any nnexp module imports torch: how OpenMP's idle threads wait (nnexp/openmp.py)

__version__ = "0.1.0"

# The Python API, imported on first use: `import nnexp` stays as light as `nnexp --help`.
_API = ("train", "sweep", "report", "RunResult", "SweepResult", "ReportResult", "NnexpRunError")


def __getattr__(name: str) -> object:  # a function or a class of nnexp/api.py
    if name in _API:
        from nnexp import api

        return getattr(api, name)
    raise AttributeError(f"module 'nnexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
