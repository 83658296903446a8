"""Baseline localisers of Fig. 2 and Table I: DPD, Stansfield, SRL, VB and MM.

Every module has a localiser class (a :class:`daun_lib.localizers.Localizer`,
``XLocalizer(params=None)(scenario, y) -> (n, 2)``), the alias
``localize(scenario, y, params=None)``, with ``y`` (n, M, N) complex, and a
frozen dataclass of documented hyper-parameters; the module docstrings say
what the source paper did and where this implementation differs.  DPD, VB and
MM are map estimators (they take ``readout=``, :mod:`daun_lib.readouts`);
Stansfield and SRL estimate bearings and share
:class:`bearings.BearingLocalizer`.  The method registry that also holds DAUN, DAUN-R and
P-ADMM is :data:`daun_lib.methods.REGISTRY`.

Modules
-------
dpd         direct position determination (Weiss 2004), grid search (+ optional off-grid step)
stansfield  beamscan AoA per BS + Stansfield bearing intersection (Gavish & Weiss 1992)
srl         l1 sparse angle spectrum per BS (Malioutov et al. 2005) + bearing intersection
vb          sparse Bayesian learning by variational Bayes for model (2) (Tzikas et al. 2008)
mm          majorization-minimization (IRLS) for the penalised form of (3) (Zheng et al. 2020)
bearings    shared bearing-intersection code (Stansfield weighted least squares, BearingLocalizer)
"""

from . import bearings, dpd, mm, srl, stansfield, vb
from .bearings import BearingLocalizer
from .dpd import DPDLocalizer, DPDParams
from .mm import MMLocalizer, MMParams
from .srl import SRLLocalizer, SRLParams
from .stansfield import StansfieldLocalizer, StansfieldParams
from .vb import VBLocalizer, VBParams

__all__ = [
    "bearings",
    "dpd",
    "mm",
    "srl",
    "stansfield",
    "vb",
    "DPDParams",
    "MMParams",
    "SRLParams",
    "StansfieldParams",
    "VBParams",
    "BearingLocalizer",
    "DPDLocalizer",
    "MMLocalizer",
    "SRLLocalizer",
    "StansfieldLocalizer",
    "VBLocalizer",
]
