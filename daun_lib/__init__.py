"""daun_lib: direct localisation for mmWave MIMO by deep ADMM unfolding (Fan, Liu, Li, Huang).

Modules
-------
scenario        geometry, grids and the sparse dictionaries A, B of (2); identifiability checks
channel         3GPP TR 38.901 UMa narrowband channels and the signal model (1) (package)
admm            P-ADMM, the linearised ADMM of (5)-(17) (kernels in _admm_kernels)
reference       problem (3) in cvxpy (Clarabel / MOSEK)
daun            DAUN, the unfolded network: network, checkpoints, losses, training, plots (package)
refine          Algorithm 1 (position refinement), the sub-grid readout and the row-power helpers
readouts        every readout "score or X -> position" by name (READOUTS, register_readout)
localizers      Localizer base: map estimators x readouts, bearing estimators
baselines       DPD, Stansfield, SRL, VB, MM
methods         REGISTRY: method name -> localize(scenario, y) -> (n, 2)
bounds          the position CRB of the LoS model (2-D and 3-D)
continuous      the continuous ML position (safeguarded Newton on the DPD cost); the LoS oracle
posterior       the Bayesian posterior of the position: posterior mean, disk MAP, LoS posterior per link
blockage        blockage-robust localisers (joint MAP of position and LoS states; mixture posterior mean)
limits          the limits on a sweep's users (CRB, noiseless floor, LoS oracle); distance-to-the-limit table
multiuser       several users in one snapshot: MULTI_REGISTRY (DPD peaks, cancellation, OMP, P-ADMM / DAUN rows)
joint_ml        the joint ML of several LoS sources: joint fit, joint Newton, alternating projection, multi-start
multiuser_study notebook 08: multi-user rows, the unknown-U rule, timing, verdict
metrics         position errors, MSE, P(error < r), their standard errors, NMSE
experiments     cached, seeded, checked Monte Carlo engine (plan / run / aggregate); CSV + JSON; timing
accuracy        the Fig. 2 sweep set-up and its rows (notebook 03)
convergence     the Fig. 3 curves (notebook 04)
tables          Table I (notebook 05)
channel_stats   the channel statistics against TR 38.901 (notebook 01)
claims          the paper's claims checked against the results (notebooks 03, 04)
figures         the figures of the notebooks
plotting        figure style and save_figure
geometry_study  accuracy with heights: 2-D vs height-aware dictionaries, package vs Sionna (notebook 06)
sionna_data     Sionna's TR 38.901 UMa channels as channel.simulate batches (optional extra 'sionna')
notebook_params checks of the notebooks' papermill parameters (names, types, ranges, output folders)
run_notebooks   executes the notebooks with papermill (make reproduce / make quick)
"""

from importlib.metadata import PackageNotFoundError, version

from . import _compat
from .scenario import Scenario

_compat.install()


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
