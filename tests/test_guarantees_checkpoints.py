"""DAUN checkpoints under damage and misuse, as a user meets them.

Damaged files (bit flips), crafted files (finite but impossible values, huge
declared sizes, with a recomputed digest), weights for another geometry,
resumed trainings with changed settings, memory of the DAUN-R readout, and
device arguments.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from daun_lib import Scenario, channel, daun
from daun_lib.daun import DAUN, TrainConfig, load_pretrained, train
from daun_lib.refine import refine

TINY = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32)
# same sizes as TINY, BSs moved
MOVED = Scenario(
    n_antennas=16,
    grid_shape=(8, 8),
    n_angles=32,
    bs_positions=((-45.0, -52.0), (-50.0, 50.0), (50.0, 50.0), (50.0, -50.0)),
)
CFG1 = TrainConfig(n_layers=1, samples_per_layer=14, batch_size=7, n_val=14, max_epochs=1, seed=3)


def sim(scenario, n, snr_db, seed):
    """A data generator defined in this module (importable, so it can be fingerprinted)."""
    return channel.simulate(scenario, n, snr_db, seed=seed)


def sim_noisier(scenario, n, snr_db, seed):
    """Another generator: 3 dB less SNR than asked."""
    return channel.simulate(scenario, n, np.asarray(snr_db) - 3.0, seed=seed)


def _state_bytes(net):
    return {k: v.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes() for k, v in net.state_dict().items()}


def _tiny_checkpoint(tmp_path, name="net.pt"):
    net = DAUN(3, scenario=TINY).set_parameters(
        rho=[0.5, 1.0, 2.0], tau1=[0.01, 0.02, 0.005], tau2=0.05, w=[0.3, 0.4, 0.5, 0.6]
    )
    net.history = [{"layer": 1, "train": [1.0, 0.5], "val": [1.2, 0.6]}]
    return net, net.save(tmp_path / name, notes="bit flips")


def _craft(tmp_path, path, edit, name="crafted.pt"):
    """Load a checkpoint, let ``edit(obj)`` change it, recompute the digest (as a crafter would), save."""
    obj = torch.load(path, weights_only=True)
    edit(obj)
    obj["digest"] = daun.checkpoint_file.digest(obj)
    out = tmp_path / name
    torch.save(obj, out)
    return out


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# ------------------------------------------------------------ 1. damaged files
def _flip_survey(tmp_path, data, positions, load, reference):
    refused = 0
    for bit in positions:
        path = tmp_path / "flipped.pt"
        path.write_bytes(_flip(data, int(bit)))
        try:
            net = load(path)
        except ValueError:
            refused += 1
            continue
        # loaded: only acceptable when the flip hit bytes that carry no information
        assert _state_bytes(net) == reference, f"bit {bit}: a damaged file loaded with other parameters"
    return refused


def test_bit_flips_are_refused_or_harmless(tmp_path):
    net, path = _tiny_checkpoint(tmp_path)
    data = path.read_bytes()
    reference = _state_bytes(DAUN.load(path))
    assert reference == _state_bytes(net)
    nbits = 8 * len(data)
    positions = [(i * nbits) // 128 + (i % 8) for i in range(128)]  # spread over the file, every bit index
    refused = _flip_survey(tmp_path, data, positions, DAUN.load, reference)
    assert refused >= 64  # most flips hit information-carrying bytes (pickle, tensors, names, digest)


def test_bit_flips_in_shipped_weights(tmp_path):
    data = (daun.WEIGHTS_DIR / daun.VARIANTS["supervised"]).read_bytes()
    reference = _state_bytes(load_pretrained())
    nbits = 8 * len(data)
    positions = [(i * nbits) // 48 + (3 * i % 8) for i in range(48)]
    refused = _flip_survey(tmp_path, data, positions, lambda p: DAUN.load(p, scenario=Scenario()), reference)
    assert refused >= 24


def test_flip_in_a_parameter_says_digest_mismatch(tmp_path):
    """The hostile study's case: one flip in the stored tau1 of a layer."""
    net, path = _tiny_checkpoint(tmp_path)
    data = path.read_bytes()
    raw = net.log_tau1.detach().numpy().tobytes()
    at = data.find(raw)
    assert at > 0  # the tensor bytes are stored uncompressed
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_flip(data, 8 * (at + 4 * 1 + 3) + 5))  # an exponent bit of tau1[1]
    with pytest.raises(ValueError, match=r"bad\.pt.*damaged: digest mismatch"):
        DAUN.load(bad)
    with pytest.raises(ValueError, match="digest mismatch"):
        DAUN(1, scenario=TINY).load_weights(bad)


def test_version_1_files_are_refused_and_can_be_upgraded(tmp_path):
    net, path = _tiny_checkpoint(tmp_path)
    obj = torch.load(path, weights_only=True)
    obj["format_version"] = 1
    del obj["digest"], obj["meta"]["dictionaries"]
    old = tmp_path / "v1.pt"
    torch.save(obj, old)
    with pytest.raises(ValueError, match="version-1.*upgrade_checkpoint"):
        DAUN.load(old)
    new = daun.upgrade_checkpoint(old, tmp_path / "v2.pt")
    assert _state_bytes(DAUN.load(new)) == _state_bytes(net)
    # the upgrade still refuses impossible contents
    obj["state_dict"]["log_tau1"] = torch.full((3,), float(np.log(148.0)))
    torch.save(obj, old)
    with pytest.raises(ValueError, match="tau1"):
        daun.upgrade_checkpoint(old, tmp_path / "v2b.pt")


# ------------------------------------------------------------ 2. crafted files
@pytest.mark.parametrize(
    "name, edit, match",
    [
        ("tau1 = 148", lambda o: o["state_dict"]["log_tau1"].fill_(float(np.log(148.0))), r"tau1\[0\].*STEP_BOUND"),
        ("tau2 zero", lambda o: o["state_dict"]["log_tau2"].__setitem__(1, -200.0), r"tau2\[1\]"),
        ("rho = 5.5e34", lambda o: o["state_dict"]["log_rho"].__setitem__(2, float(np.log(5.5e34))), r"rho\[2\]"),
        ("w huge", lambda o: o["state_dict"]["log_w"].fill_(60.0), r"w\[0\]"),
        ("w_min negative", lambda o: o["state_dict"]["w_min"].fill_(-1.0), "w_min"),
        ("nan", lambda o: o["state_dict"]["log_w"].__setitem__(0, float("nan")), "log_w is not finite"),
        (
            "integer",
            lambda o: o["state_dict"].__setitem__("log_rho", torch.zeros(3, dtype=torch.int64)),
            "log_rho.*float32 or float64",
        ),
        (
            "complex",
            lambda o: o["state_dict"].__setitem__("log_tau1", torch.zeros(3, dtype=torch.complex64)),
            "log_tau1.*float32 or float64",
        ),
        (
            "half",
            lambda o: o["state_dict"].__setitem__("log_w", torch.zeros(4, dtype=torch.float16)),
            "log_w.*float32 or float64",
        ),
        (
            "sparse",
            lambda o: o["state_dict"].__setitem__("log_w", torch.zeros(4).to_sparse()),
            "log_w.*dense float32 or float64",
        ),
        ("shape", lambda o: o["state_dict"].__setitem__("log_w", torch.zeros(5)), r"log_w has shape \(5,\)"),
        ("2-d", lambda o: o["state_dict"].__setitem__("log_rho", torch.zeros(3, 1)), r"log_rho has shape"),
        ("extra key", lambda o: o["state_dict"].__setitem__("extra", torch.zeros(1)), "keys"),
        ("missing key", lambda o: o["state_dict"].pop("w_min"), "keys"),
        ("layers mismatch", lambda o: o["meta"].__setitem__("n_layers", 4), r"shape \(3,\), expected \(4,\)"),
        ("n_layers 1e9", lambda o: o["meta"].__setitem__("n_layers", 10**9), "n_layers"),
        ("n_layers bool", lambda o: o["meta"].__setitem__("n_layers", True), "n_layers"),
        ("dtype", lambda o: o["meta"].__setitem__("dtype", "float16"), "dtype"),
        (
            "huge grid",
            lambda o: (
                o["meta"]["scenario"].__setitem__("grid_shape", [3000, 3000]),
                o["meta"]["shape"].__setitem__("K", 9_000_000),
            ),
            "MAX_DICTIONARY_ENTRIES",
        ),
        ("sizes disagree", lambda o: o["meta"]["scenario"].__setitem__("grid_shape", [9, 8]), "sizes"),
        ("many BSs", lambda o: o["meta"]["shape"].__setitem__("M", 10**6), "shape"),
    ],
)
def test_crafted_values_are_refused_before_anything_is_built(tmp_path, monkeypatch, name, edit, match):
    _, path = _tiny_checkpoint(tmp_path)
    crafted = _craft(tmp_path, path, edit)
    built = []
    monkeypatch.setattr(
        Scenario,
        "dictionaries",
        lambda self: built.append(self) or (_ for _ in ()).throw(AssertionError("dictionaries built")),
    )
    if "tau" not in name:  # everything but the step bound is checked before the dictionaries exist
        with pytest.raises(ValueError, match=match):
            DAUN.load(crafted)
        assert not built
    monkeypatch.undo()
    with pytest.raises(ValueError, match=match):
        DAUN.load(crafted)
    with pytest.raises(ValueError, match=match):
        DAUN(2, scenario=TINY).load_weights(crafted)


def test_shipped_steps_are_within_the_bound():
    ratios = []
    for variant in daun.VARIANTS:
        net = load_pretrained(variant)
        na, nb = net.operator_norms()
        p = net.parameters_dict()
        ratios += [float(p["tau1"].max() * na), float(p["tau2"].max() * nb)]
    assert max(ratios) < 7.2  # the value quoted in the docstring of STEP_BOUND
    assert max(ratios) * 5 < daun.STEP_BOUND


def test_oversized_file_and_extra_meta(tmp_path, monkeypatch):
    net, path = _tiny_checkpoint(tmp_path)
    monkeypatch.setattr(daun.checkpoint_file, "MAX_CHECKPOINT_BYTES", 100)
    with pytest.raises(ValueError, match="MAX_CHECKPOINT_BYTES"):
        DAUN.load(path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="extra_meta"):
        net.save(tmp_path / "x.pt", n_layers=7)  # would make the record lie
    with pytest.raises(ValueError, match="meta"):
        net.save(tmp_path / "y.pt", notes=object())  # not a plain value: would not load back


# --------------------------------------------------------- 3. other geometries
def test_weights_for_moved_bs_are_refused(tmp_path):
    path = DAUN(2, scenario=MOVED).save(tmp_path / "moved.pt")
    with pytest.raises(ValueError, match="bs_positions"):
        DAUN.load(path, scenario=TINY)
    with pytest.raises(ValueError, match="bs_positions"):
        DAUN(2, scenario=TINY).load_weights(path)
    oriented = Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, array_normal_deg=(10.0, -10.0, 190.0, 170.0))
    with pytest.raises(ValueError, match="array_normal_deg"):
        DAUN.load(DAUN(2, scenario=oriented).save(tmp_path / "o.pt"), scenario=TINY)


def test_weights_from_user_dictionaries_are_checked_against_the_geometry(tmp_path):
    A, B = MOVED.dictionaries()
    path = DAUN.from_dictionaries(A, B, 2, grid=MOVED.grid).save(tmp_path / "user.pt")
    with pytest.raises(ValueError, match="dictionary A of BS 0 differs"):
        DAUN.load(path, scenario=TINY)
    with pytest.raises(ValueError, match="dictionary A"):
        DAUN(2, scenario=TINY).load_weights(path)
    # the same dictionaries, in another precision: accepted
    assert DAUN.load(path, scenario=MOVED, dtype="float64").n_layers == 2
    A2, B2 = TINY.dictionaries()
    assert (
        DAUN.from_dictionaries(A2.astype(np.complex64), B2, 1)
        .load_weights(DAUN(2, scenario=TINY).save(tmp_path / "t.pt"))
        .n_layers
        == 2
    )
    # another angle grid of the same size (B differs, A equal)
    with pytest.raises(ValueError, match="dictionary B"):
        DAUN.from_dictionaries(A2, B2 * np.exp(0.3j), 1).load_weights(tmp_path / "t.pt")


def test_crafted_scenario_record_does_not_hide_the_geometry(tmp_path):
    """A file claiming TINY's scenario but trained for MOVED's dictionaries (digest recomputed)."""
    path = DAUN(2, scenario=MOVED).save(tmp_path / "moved.pt")
    tiny_fields = daun.checkpoint_file.scenario_fields(TINY)
    crafted = _craft(tmp_path, path, lambda o: o["meta"].__setitem__("scenario", tiny_fields))
    with pytest.raises(ValueError, match="dictionary A"):
        DAUN.load(crafted)


# ------------------------------------------------------------ 4. resuming
@pytest.fixture(scope="module")
def one_layer_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "ck.pt"
    train(CFG1, TINY, checkpoint=path, progress=False, simulate=sim)
    return path


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        (
            "los model",
            dict(scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, los_model="3gpp")),
            "los_model",
        ),
        (
            "carrier",
            dict(scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, carrier_hz=28e9)),
            "carrier_hz",
        ),
        (
            "height",
            dict(scenario=Scenario(n_antennas=16, grid_shape=(8, 8), n_angles=32, bs_height_m=10.0)),
            "bs_height_m",
        ),
        ("geometry", dict(scenario=MOVED), "bs_positions"),
        ("dtype", dict(dtype="float64"), "dtype"),
        ("generator", dict(simulate=sim_noisier), "data generator"),
        ("config", dict(config=TrainConfig(**{**CFG1.as_dict(), "n_layers": 2, "seed": 4})), "seed = 3"),
        ("config los", dict(config=TrainConfig(**{**CFG1.as_dict(), "n_layers": 2, "los_model": 0.5})), "los_model"),
    ],
)
def test_resume_refuses_a_changed_setting(tmp_path, one_layer_checkpoint, change, kwargs, match):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(one_layer_checkpoint.read_bytes())
    args = dict(config=TrainConfig(**{**CFG1.as_dict(), "n_layers": 2}), scenario=TINY, simulate=sim)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train(args.pop("config"), args.pop("scenario"), checkpoint=ck, progress=False, **args)
    assert DAUN.load(ck).n_layers == 1  # nothing was overwritten


def test_resume_with_the_same_settings_continues(tmp_path, one_layer_checkpoint):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(one_layer_checkpoint.read_bytes())
    first = DAUN.load(ck).parameters_dict()
    net = train(TrainConfig(**{**CFG1.as_dict(), "n_layers": 2}), TINY, checkpoint=ck, progress=False, simulate=sim)
    assert net.n_layers == 2 and DAUN.load(ck).n_layers == 2
    assert "generator" in DAUN.load(ck).meta
    np.testing.assert_array_equal(net.parameters_dict()["rho"][:1] > 0, [True])
    assert first["rho"].shape == (1,)


def test_default_generator_checkpoint_and_resume(tmp_path):
    """The common case: no simulate given, a checkpoint, then a resume with one more layer."""
    ck = tmp_path / "ck.pt"
    train(CFG1, TINY, checkpoint=ck, progress=False)
    net = train(TrainConfig(**{**CFG1.as_dict(), "n_layers": 2}), TINY, checkpoint=ck, progress=False)
    assert net.n_layers == 2
    with pytest.raises(ValueError, match="data generator"):
        train(TrainConfig(**{**CFG1.as_dict(), "n_layers": 3}), TINY, checkpoint=ck, progress=False, simulate=sim)


def test_unfingerprintable_generator_with_a_checkpoint(tmp_path):
    class Opaque:
        __slots__ = ()

        def __call__(self, scenario, n, snr_db, seed):
            return channel.simulate(scenario, n, snr_db, seed=seed)

    with pytest.raises(ValueError, match="simulate: cannot be fingerprinted"):
        train(CFG1, TINY, checkpoint=tmp_path / "ck.pt", progress=False, simulate=Opaque())
    # without a checkpoint nothing needs the fingerprint
    assert train(CFG1, TINY, progress=False, simulate=Opaque()).n_layers == 1


# ------------------------------------------------------------ 5. memory of DAUN-R
def _numpy_peak(fn):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_daun_r_readout_memory_does_not_grow_with_n():
    """The readout runs per chunk: numpy's peak (X, its moduli, the 2-means arrays: about 170 KiB
    per paper-size sample when done on all samples at once) is the same for 16 and 64 samples."""
    net = load_pretrained()
    y = channel.simulate(Scenario(), 64, 10.0, seed=1).y
    small = _numpy_peak(lambda: net.localize(y[:16], batch_size=8))
    large = _numpy_peak(lambda: net.localize(y, batch_size=8))
    assert small > 0
    assert large < 1.1 * small  # all at once: 48 more samples x 170 KiB = +8 MB (4x)
    for flag in (True, False):  # the positions are those of the readout on all of X
        X = net.estimate_x(y, batch_size=8)
        k = refine(X) if flag else np.argmax(np.linalg.norm(X, axis=2), axis=1)
        np.testing.assert_array_equal(net.localize(y, refine=flag, batch_size=8), net.grid.double().numpy()[k])


# ------------------------------------------------------------ 6. devices
def test_bad_devices_name_the_argument(tmp_path):
    unavailable = "cuda:99" if torch.cuda.is_available() else "cuda"
    _, path = _tiny_checkpoint(tmp_path)
    for dev in ("foo", unavailable, 3.5):
        with pytest.raises(ValueError, match="device"):
            DAUN(1, scenario=TINY, device=dev)
        with pytest.raises(ValueError, match="device"):
            DAUN.load(path, device=dev)
        with pytest.raises(ValueError, match="device"):
            load_pretrained(device=dev)
        with pytest.raises(ValueError, match="device"):
            train(CFG1, TINY, progress=False, device=dev)


def test_layer_nmse_is_scale_free():
    """DAUN.solve's per-layer NMSE sums in float64, so a tiny or huge y gives the same curve."""
    net = load_pretrained()
    y = channel.simulate(Scenario(), 8, 0.0, seed=4).y
    ref = net.solve(y).nmse
    assert (ref > 0).all()
    for c in (1e-25, 1e18):
        np.testing.assert_allclose(net.solve(y * c).nmse, ref, rtol=1e-6)


def test_load_or_train_never_uses_a_damaged_cached_checkpoint(tmp_path):
    """A cached checkpoint that fails the checks is named in a warning and retrained, not used."""
    ck = tmp_path / "cached.pt"
    first = train(CFG1, TINY, checkpoint=ck, progress=False)
    with pytest.raises(ValueError, match="config"):
        daun.load_or_train("not a config", ck)
    # load_or_train works on the default Scenario: a TINY checkpoint is the wrong scenario for it
    with pytest.warns(UserWarning, match="not used and will be overwritten"):
        net, source = daun.load_or_train(
            daun.recipe("supervised", n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1), ck, progress=False
        )
    assert source.startswith("trained now") and net.n_layers == 1
    assert first.shape != net.shape
    again, source = daun.load_or_train(
        daun.recipe("supervised", n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1), ck, progress=False
    )
    assert source.startswith("cached checkpoint")
    for key, value in net.parameters_dict().items():
        np.testing.assert_array_equal(again.parameters_dict()[key], value)


def test_load_or_train_returns_shipped_weights_for_a_shipped_recipe(tmp_path):
    net, source = daun.load_or_train(daun.RECIPES["supervised"], tmp_path / "none.pt")
    assert source == "shipped weights (supervised)"
    np.testing.assert_array_equal(
        net.parameters_dict()["tau1"], load_pretrained("supervised").parameters_dict()["tau1"]
    )


def test_load_or_train_refuses_a_checkpoint_made_with_other_settings(tmp_path):
    """A fixed checkpoint path reused with another config is retrained, not silently reused."""
    ck = tmp_path / "fixed.pt"
    small = dict(n_layers=1, samples_per_layer=14, n_val=14, max_epochs=1)
    first, _ = daun.load_or_train(daun.recipe("supervised", seed=1, **small), ck, progress=False)
    with pytest.warns(UserWarning, match="seed"):
        second, source = daun.load_or_train(daun.recipe("supervised", seed=2, **small), ck, progress=False)
    assert source.startswith("trained now")
    assert not np.array_equal(first.parameters_dict()["tau1"], second.parameters_dict()["tau1"])
