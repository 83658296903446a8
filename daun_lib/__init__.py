"""daun_lib: direct localisation for mmWave MIMO by deep ADMM unfolding (Fan, Liu, Li, Huang).

Modules
-------
scenario    geometry, grids and the sparse dictionaries A, B of (2)
channel     3GPP TR 38.901 UMa narrowband channels and the signal model (1)
admm        P-ADMM, the linearised ADMM of (5)-(17)
reference   problem (3) in cvxpy (Clarabel / MOSEK)
daun        DAUN, the unfolded network: training, checkpoints, shipped weights
refine      plain argmax readout, Algorithm 1 (position refinement), sub-grid readout
baselines   DPD, Stansfield, SRL, VB, MM
methods     REGISTRY: method name -> localize(scenario, y) -> (n, 2)
metrics     MSE, probability of sub-metre error, NMSE
experiments cached, seeded Monte Carlo engine; CSV + JSON sidecars; timing
plotting    figure style and save_figure
notebook_params  checks of the notebooks' papermill parameters (names, types, ranges, output folders)
"""

from importlib.metadata import PackageNotFoundError, version

from .scenario import Scenario



def _source_version() -> str:
    """The version in the source tree's pyproject.toml + "+source" (the package is not installed)."""
    from pathlib import Path

    try:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "0.0.0+source"
    for line in text.splitlines():
        if line.strip().startswith("version") and "=" in line:
            return line.split("=", 1)[1].strip().strip('"') + "+source"
    return "0.0.0+source"


try:
    __version__ = version("daun_lib")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = _source_version()

__all__ = ["Scenario", "__version__"]
