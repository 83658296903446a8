"""Reference batches of ``daun_lib.channel.simulate``, and how the tests compare with them.

Writes (``.venv/bin/python tests/data/make_channel_references.py``, from the repository root or anywhere):

* ``tests/data/channel_2d_reference.npz``: the 18 two-dimensional batches of ``CASES_2D``
  (``Scenario(los_model=model)``, n in 1, 7, 300, 10 dB, seeds 0 and 123), read by
  ``tests/test_channel_3d.py::test_2d_simulate_matches_reference``;
* ``tests/data/channel_one_user_reference.npz``: the 4 single-user batches of ``CASES_ONE_USER``, read by
  ``tests/test_channel_multiuser.py::test_one_user_matches_reference``.

Rerun it only when the channel model is changed on purpose (and say so in the commit): the files pin the
released model, and regenerating them after an accidental change would hide that change.  They replace
SHA-256 digests of the raw arrays, which were platform-dependent: numpy's float64 exp/sin/log/power
differ in the last bit between CPUs (SIMD dispatch) and libms, so the digests moved from one machine to
another with the model unchanged.  These files were written by the unchanged code (the commit that
replaced the digests), on numpy 2.4.6 / AMD EPYC; that code gives bit-identical batches to the code the
digests were recorded from (checked on the same machine).

What is stored, per case ``name`` (npz keys ``name/field``), all of it covering every sample:

* ``positions``, ``los``, ``snr_db``, ``ut_heights``: the whole arrays;
* ``y_energy``: ``sum_n |y[i, m, n]|^2`` per sample and BS, shape ``(n, M)``;
* ``y_proj``, ``h_proj``: each sample's ``M N`` entries of y (h) projected on the two fixed real
  weight columns of :func:`weights` (every entry with its own non-zero weight), shape ``(n, 2)``.

Comparison (:func:`assert_matches_reference`): floats with ``rtol = RTOL`` and
``atol = ATOL_SCALE * max|reference|`` of that array; booleans and integers exactly.  Changing one
entry of y or h (one sample, BS and antenna) by 3e-9 of the rms entry fails it (checked on 1100
random entries over all cases), and so do a carrier of 30.001 GHz, an antenna spacing changed by
1e-9, a 24.9 dB cluster cut or another seed; yet the files stay at about 230 KB (the full y and h of
the n = 300 cases alone would be 11 MB).  Round-off measured on the machine that wrote the files,
between numpy's AVX2/FMA3 kernels and its baseline ones (``NPY_DISABLE_CPU_FEATURES=X86_V3``, which
changes the old digests) and between OpenBLAS kernels: at most about 1e-4 of the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from daun_lib import Scenario
from daun_lib import channel as ch

HERE = Path(__file__).resolve().parent
FILE_2D = HERE / "channel_2d_reference.npz"
FILE_ONE_USER = HERE / "channel_one_user_reference.npz"

RTOL = 1e-10
ATOL_SCALE = 1e-12

#: name -> (Scenario keywords, n, snr_db, seed) of ``simulate(Scenario(**kw), n, snr_db, seed)``
CASES_2D = {
    f"{model}-n{n}-seed{seed}": ({"los_model": model}, n, 10.0, seed)
    for model in ("always", "3gpp", 0.4)
    for n in (1, 7, 300)
    for seed in (0, 123)
}
CASES_ONE_USER = {
    "default": ({}, 3, 10.0, 0),
    "3gpp": ({"los_model": "3gpp"}, 5, 0.0, 1),
    "3d_heights": ({"geometry": "3d", "ut_height_range_m": (1.5, 10.0), "los_model": "3gpp"}, 4, 5.0, 2),
    "pure_los": ({"multipath": False}, 2, 20.0, 3),
}
#: the batch fields stored whole
WHOLE = ("positions", "los", "snr_db", "ut_heights")


def simulate(case: tuple) -> ch.ChannelBatch:
    kw, n, snr_db, seed = case
    return ch.simulate(Scenario(**kw), n, snr_db, seed)


def weights(size: int) -> np.ndarray:
    """``(size, 2)`` fixed real weights: ``1 + j / size`` and ``(-1)^j (1 + (j^2 mod 97) / 97)``.

    Plain IEEE arithmetic on integers (no libm), so the same on every platform.
    """
    j = np.arange(size, dtype=np.float64)
    return np.stack([1.0 + j / size, np.where(j % 2 == 0, 1.0, -1.0) * (1.0 + (j * j % 97) / 97)], axis=-1)


def summarise(batch: ch.ChannelBatch) -> dict[str, np.ndarray]:
    """What is stored of a batch (module docstring): every sample, a few numbers each."""
    n = batch.y.shape[0]
    out = {f: np.asarray(getattr(batch, f)) for f in WHOLE}
    out["y_energy"] = np.sum(np.abs(batch.y) ** 2, axis=-1)
    for f in ("y", "h"):
        x = getattr(batch, f).reshape(n, -1)
        out[f + "_proj"] = x @ weights(x.shape[1])
    return out


def assert_matches_reference(path: Path, name: str, batch: ch.ChannelBatch) -> None:
    """Compare ``summarise(batch)`` with the stored reference ``name``; the message names the key."""
    got = summarise(batch)
    file = f"tests/data/{path.name}"
    rerun = "(tests/data/make_channel_references.py writes it; rerun only for a deliberate model change)"
    if not path.is_file():
        raise AssertionError(f"{file}: missing, needed for reference {name!r} {rerun}")
    with np.load(path, allow_pickle=False) as f:
        stored = {k.split("/", 1)[1]: f[k] for k in f.files if k.split("/", 1)[0] == name}
    for field in sorted(set(got) | set(stored)):
        key = f"{name}/{field}"
        assert field in stored, f"{file}: key {key!r} missing {rerun}"
        assert field in got, f"{file}: key {key!r} is not a field of the summary"
        want, have = stored[field], got[field]
        assert want.shape == have.shape, f"{file}: key {key!r} has shape {want.shape}, simulate gives {have.shape}"
        assert want.dtype == have.dtype, f"{file}: key {key!r} has dtype {want.dtype}, simulate gives {have.dtype}"
        if np.issubdtype(want.dtype, np.inexact):
            atol = ATOL_SCALE * float(np.max(np.abs(want), initial=0.0))
            np.testing.assert_allclose(have, want, rtol=RTOL, atol=atol, err_msg=f"{file}: key {key!r}")
        else:
            np.testing.assert_array_equal(have, want, err_msg=f"{file}: key {key!r}")


def main() -> None:
    for path, cases in ((FILE_2D, CASES_2D), (FILE_ONE_USER, CASES_ONE_USER)):
        arrays = {}
        for name, case in cases.items():
            for field, value in summarise(simulate(case)).items():
                arrays[f"{name}/{field}"] = value
        np.savez_compressed(path, **arrays)
        print(f"{path.relative_to(HERE.parent.parent)}: {len(cases)} cases, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
