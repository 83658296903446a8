r"""The maths of the structured dictionary products of :mod:`daun_lib.operators`: a NUFFT.

Every column of a ULA dictionary (``A_m`` of (2), ``B_m``) is the unit-norm steering vector

.. math::

    d_k[n] = e^{j \omega_k (n - c)} / \sqrt{N},\qquad \omega_k = 2\pi s\, u_k,\quad c = (N-1)/2,

with ``u_k = sin(theta_k)`` the column's spatial frequency and ``s`` the element spacing in
wavelengths, so ``D^H r`` evaluates the DTFT of ``r`` at the frequencies ``omega_k`` (a type-2
non-uniform DFT) and ``D x`` is its transpose (type 1).  Per BS the product is done on an
oversampled grid of ``G ~ oversampling * N`` frequencies ``2 pi j / G``:

* ``D^H r``: multiply ``r`` by the real window correction ``corr[n] = 1 / (sqrt(N) phi_hat((n - c) / G))``,
  an FFT of length ``G``, the phase ``e^{j 2 pi j c / G}`` of the centred index, and a real
  ``taps``-tap interpolation from the grid to each ``omega_k`` with the "exponential of
  semicircle" kernel ``phi(z) = exp(beta (sqrt(1 - z^2) - 1))`` (Barnett et al., FINUFFT);
* ``D x``: the transpose: spread ``x`` onto the grid with the same real weights, the conjugate
  phase, an inverse FFT (unnormalised), the first ``N`` samples, times ``corr``.

A tap that wraps around the grid ``p`` times carries the real sign ``(-1)^{p (N - 1)}`` (for
even ``N`` the centred grid function is anti-periodic).  Both products use the same weights, so
the structured ``D`` and ``D^H`` are exact adjoints of each other (to float round-off).  Cost per
BS and sample: ``O(G log G + taps * P)`` instead of ``O(N P)``.

Layouts are those of :mod:`daun_lib._admm_kernels`: complex ``(M, P, n)`` / ``(M, N, n)``, batch
last, or the real block layout ``(M, 2P, n)`` = ``[Re; Im]`` stacked along the second axis.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = ["Plan", "grid_size", "kernel_beta", "toeplitz_norm_sq"]


def grid_size(n_antennas: int, oversampling: float) -> int:
    """The FFT length ``G``: the smallest 2^a 3^b 5^c >= ``oversampling * N``."""
    target = max(int(math.ceil(oversampling * n_antennas)), 8)
    best = None
    p2 = 1
    while p2 < 2 * target:
        p3 = p2
        while p3 < 2 * target:
            p5 = p3
            while p5 < target:
                p5 *= 5
            best = p5 if best is None else min(best, p5)
            p3 *= 3
        p2 *= 2
    return int(best)


def kernel_beta(taps: int, oversampling: float) -> float:
    """Shape parameter of the exponential-of-semicircle kernel (FINUFFT's rule scaled to ``oversampling``)."""
    return 0.97 * math.pi * taps * (1.0 - 1.0 / (2.0 * oversampling))


def _kernel(z: np.ndarray, beta: float) -> np.ndarray:
    """``phi(z) = exp(beta (sqrt(1 - z^2) - 1))`` on ``|z| <= 1``, 0 outside."""
    inside = np.abs(z) <= 1.0
    return np.where(inside, np.exp(beta * (np.sqrt(np.clip(1.0 - z * z, 0.0, None)) - 1.0)), 0.0)


def _kernel_ft(f: np.ndarray, taps: int, beta: float) -> np.ndarray:
    """``phi_hat(f) = int phi(2 s / taps) cos(2 pi s f) ds`` over ``|s| <= taps / 2`` (Gauss-Legendre)."""
    nodes, wts = np.polynomial.legendre.leggauss(8 * taps + 64)
    s = nodes * taps / 2.0
    return (wts * taps / 2.0 * _kernel(nodes, beta)) @ np.cos(2.0 * np.pi * np.outer(s, f))


def toeplitz_norm_sq(u: np.ndarray, n_antennas: int, spacing: float) -> float:
    """``max_m ||D_m||_2^2`` of the exact ULA dictionaries with spatial frequencies ``u`` (M, P).

    ``D_m D_m^H`` is Toeplitz, ``t[l] = sum_k e^{j 2 pi s u_k l} / N``: O(N P) work and an
    N x N eigenvalue problem per BS, instead of the O(N^2 P) Gram product.
    """
    lag = np.arange(n_antennas)
    out = 0.0
    for um in np.atleast_2d(np.asarray(u, dtype=float)):
        t = np.zeros(n_antennas, dtype=np.complex128)
        for lo in range(0, um.size, 4096):
            t += np.exp(2j * np.pi * spacing * np.outer(lag, um[lo : lo + 4096])).sum(axis=1)
        t /= n_antennas
        idx = lag[:, None] - lag[None, :]
        T = np.where(idx >= 0, t[np.abs(idx)], np.conj(t[np.abs(idx)]))
        out = max(out, float(np.linalg.eigvalsh(T).max()))
    return out


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], dtype, device):
    """A torch CSR matrix from COO triplets (rows sorted within the construction)."""
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    crow = np.zeros(shape[0] + 1, dtype=np.int64)
    np.add.at(crow, rows + 1, 1)
    crow = np.cumsum(crow)
    with warnings.catch_warnings():  # torch's "CSR support is in beta" notice
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(crow),
            torch.as_tensor(cols.astype(np.int64)),
            torch.as_tensor(vals, dtype=dtype),
            size=shape,
            device=device,
            check_invariants=False,
        )


class Plan:
    """Precomputed structured products for spatial frequencies ``u`` (M, P).

    Parameters
    ----------
    u : (M, P) float
        ``sin(theta)`` of every column of every BS's dictionary, in [-1, 1].
    n_antennas : int
        N.
    spacing : float
        Element spacing in wavelengths.
    taps : int
        Interpolation taps per column (the error falls about tenfold per two taps).
    oversampling : float
        ``G / N``.
    cdtype : torch complex dtype; device : torch device
    """

    def __init__(self, u, n_antennas, spacing, taps, oversampling, cdtype, device) -> None:
        u = np.atleast_2d(np.asarray(u, dtype=float))
        M, P = u.shape
        N = int(n_antennas)
        G = grid_size(N, oversampling)
        beta = kernel_beta(taps, oversampling)
        c = (N - 1) / 2.0
        v = G * spacing * u  # column frequency in grid units
        J = np.floor(v - taps / 2.0).astype(np.int64)[..., None] + 1 + np.arange(taps)  # (M, P, taps)
        w = _kernel((v[..., None] - J) / (taps / 2.0), beta)
        j = np.mod(J, G)
        wraps = (J - j) // G
        w = np.where((wraps * (N - 1)) % 2 == 1, -w, w)
        rdtype = torch.float64 if cdtype == torch.complex128 else torch.float32
        self.M, self.N, self.P, self.G, self.taps = M, N, P, G, int(taps)
        self.cdtype, self.rdtype, self.device = cdtype, rdtype, torch.device(device)
        t = np.arange(N) - c
        corr = 1.0 / (_kernel_ft(t / G, taps, beta) * np.sqrt(N))
        self.corr = torch.as_tensor(corr, dtype=rdtype, device=device).reshape(1, N, 1)
        phase = np.exp(2j * np.pi * np.arange(G) * c / G)
        self.phase = torch.as_tensor(phase, dtype=cdtype, device=device).reshape(1, G, 1)
        self.phase_c = self.phase.conj().resolve_conj()
        m = np.broadcast_to(np.arange(M)[:, None, None], J.shape)
        k = np.broadcast_to(np.arange(P)[None, :, None], J.shape)
        mk, mj, wf = m.ravel(), j.ravel(), w.ravel()
        kk = k.ravel()
        # complex layout: rows m P + k, cols m G + j; real block layout: a block per (m, Re/Im)
        self._coo = {
            "c": (mk * P + kk, mk * G + mj, wf, (M * P, M * G)),
            "b": (
                np.concatenate([2 * mk * P + kk, (2 * mk + 1) * P + kk]),
                np.concatenate([2 * mk * G + mj, (2 * mk + 1) * G + mj]),
                np.concatenate([wf, wf]),
                (2 * M * P, 2 * M * G),
            ),
        }
        self._mats: dict[str, torch.Tensor] = {}

    def _mat(self, layout: str, transpose: bool) -> torch.Tensor:
        key = layout + ("T" if transpose else "")
        if key not in self._mats:
            rows, cols, vals, shape = self._coo[layout]
            if transpose:
                rows, cols, shape = cols, rows, (shape[1], shape[0])
            self._mats[key] = _csr(rows, cols, vals, shape, self.rdtype, self.device)
        return self._mats[key]

    # ------------------------------------------------------------ grid <-> signal
    def _to_grid(self, r: torch.Tensor) -> torch.Tensor:
        """(M, N, n) complex signal -> (M, G, n) phased FFT of ``corr * r``."""
        return torch.fft.fft(r * self.corr, n=self.G, dim=1).mul_(self.phase)

    def _from_grid(self, H: torch.Tensor) -> torch.Tensor:
        """(M, G, n) complex grid -> (M, N, n) signal: unnormalised inverse FFT of the de-phased grid."""
        return torch.fft.ifft(H * self.phase_c, dim=1, norm="forward")[:, : self.N] * self.corr

    # ------------------------------------------------------------ complex layout
    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """``D_m^H r_m``: (M, N, n) complex -> (M, P, n) complex."""
        n = r.shape[-1]
        F = torch.view_as_real(self._to_grid(r)).reshape(self.M * self.G, 2 * n)
        out = torch.mm(self._mat("c", False), F)
        return torch.view_as_complex(out.reshape(self.M, self.P, n, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``D_m x_m``: (M, P, n) complex -> (M, N, n) complex."""
        n = x.shape[-1]
        xr = torch.view_as_real(x.contiguous()).reshape(self.M * self.P, 2 * n)
        H = torch.mm(self._mat("c", True), xr)
        return self._from_grid(torch.view_as_complex(H.reshape(self.M, self.G, n, 2)))

    # ------------------------------------------------------------ real block layout, in place
    def block_adjoint_add_(self, x: torch.Tensor, r: torch.Tensor, alpha: float) -> torch.Tensor:
        """``x += alpha [Re; Im](D^H r)`` with ``x`` (M, 2P, n) and ``r`` (M, 2N, n) real block (in place)."""
        N, n = self.N, r.shape[-1]
        F = self._to_grid(torch.complex(r[:, :N], r[:, N:]))
        Fb = torch.cat([F.real, F.imag], dim=1).reshape(2 * self.M * self.G, n)
        x.view(2 * self.M * self.P, n).addmm_(self._mat("b", False), Fb, alpha=alpha)
        return x

    def block_forward_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = [Re; Im](D x)`` with ``x`` (M, 2P, n) and ``out`` (M, 2N, n) real block."""
        N, G, n = self.N, self.G, x.shape[-1]
        Hb = torch.mm(self._mat("b", True), x.reshape(2 * self.M * self.P, n)).reshape(self.M, 2 * G, n)
        s = self._from_grid(torch.complex(Hb[:, :G], Hb[:, G:]))
        out[:, :N] = s.real
        out[:, N:] = s.imag
        return out
