"""External sample sources (audit/gans/external.py) through the sample stage: round trips,
determinism, and one error line for every bad input."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from audit import sample as sample_stage
from audit.data.base import SourceDataset
from audit.data.store import prepare
from audit.io import run_cli

# torch 2.14 deprecates TorchScript (FutureWarning on script/save/load); it still works
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")

from tests.conftest import DEFAULT_SPLITS as SPLITS
from tests.conftest import REPO, assert_cli_error, sample_args


@pytest.fixture(scope="module")
def data(digits_prepared):
    """Digits: 8x8 grayscale, prepared once per session (tests/conftest.py)."""
    return digits_prepared


@pytest.fixture(scope="module")
def rgb_data(tmp_path_factory):
    """40 random 8x8 RGB images, 2 classes."""
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    source = SourceDataset("rgb", np.arange(40) % 2, ("a", "b"), (8, 8, 3), lambda idx: images[np.asarray(idx)])
    return prepare(source, tmp_path_factory.mktemp("rgb") / "data", SPLITS, seed=0, progress=False)


@pytest.fixture(scope="module")
def samples():
    """What an external GAN produced: 30 uint8 (8, 8, 1) images with every grey level in use."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8)
    x.flat[:256] = np.arange(256)
    return x


def run(data, spec, out, n, seed=0, name="ext"):
    sample_stage.main(sample_args(name, spec, data.path, out, n, seed))
    return np.load(out / "samples.npy")


def write_pngs(images, folder):
    """Half in folder/a, half in folder/b, so sorted relative paths keep the order."""
    half = images.shape[0] // 2
    for i, img in enumerate(images):
        path = folder / ("a" if i < half else "b") / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path)


# --- round trips --------------------------------------------------------------------------------

def test_folder_round_trip(data, samples, tmp_path):
    write_pngs(samples, tmp_path / "pngs")
    back = run(data, {"type": "folder", "path": str(tmp_path / "pngs")}, tmp_path / "out", n=30)
    np.testing.assert_array_equal(back, samples)
    # fewer asked: a seeded subset in file order, without replacement
    few = run(data, {"type": "folder", "path": str(tmp_path / "pngs")}, tmp_path / "few", n=10, seed=3)
    rows = [np.flatnonzero((samples == img).all(axis=(1, 2, 3)))[0] for img in few]
    assert len(set(rows)) == 10 and rows == sorted(rows)
    # more asked with replace: every file used 2 or 3 times
    many = run(data, {"type": "folder", "path": str(tmp_path / "pngs"), "replace": True}, tmp_path / "many", n=70)
    uses = [int((many == img).all(axis=(1, 2, 3)).sum()) for img in samples]
    assert sum(uses) == 70 and set(uses) <= {2, 3}


def test_folder_converts_channels_and_size(data, rgb_data, tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    write_pngs(rgb, tmp_path / "rgb")
    # RGB files for RGB data: exact; for grayscale data: PIL's luma, one channel
    np.testing.assert_array_equal(run(rgb_data, {"type": "folder", "path": str(tmp_path / "rgb")}, tmp_path / "o1", 4), rgb)
    luma = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in rgb])[..., None]
    np.testing.assert_array_equal(run(data, {"type": "folder", "path": str(tmp_path / "rgb")}, tmp_path / "o2", 4), luma)
    # an 8 x 12 (h x w) file already covers 8 x 8 at scale 1: centre crop, columns 2..9
    wide = np.random.default_rng(3).integers(0, 256, (8, 12), dtype=np.uint8)
    (tmp_path / "wide").mkdir()
    Image.fromarray(wide).save(tmp_path / "wide" / "x.png")
    np.testing.assert_array_equal(run(data, {"type": "folder", "path": str(tmp_path / "wide")}, tmp_path / "o3", 1)[0, ..., 0],
                                  wide[:, 2:10])
    # a 16 x 16 JPEG is resized (bicubic) to 8 x 8; a flat image stays flat
    (tmp_path / "jpg").mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "jpg" / "x.JPG")
    out = run(data, {"type": "folder", "path": str(tmp_path / "jpg")}, tmp_path / "o4", 1)
    assert out.shape == (1, 8, 8, 1) and np.abs(out.astype(int) - 90).max() <= 2


def test_array_round_trips(data, samples, tmp_path):
    np.save(tmp_path / "s.npy", samples)
    np.testing.assert_array_equal(run(data, {"type": "array", "path": str(tmp_path / "s.npy")}, tmp_path / "o1", 30), samples)
    nchw = samples.transpose(0, 3, 1, 2).astype(np.float32)
    np.savez(tmp_path / "m11.npz", samples=nchw / 127.5 - 1, other=np.zeros(3))
    back = run(data, {"type": "array", "path": str(tmp_path / "m11.npz"), "layout": "NCHW_float", "range": "[-1,1]"},
               tmp_path / "o2", 30)
    assert np.abs(back.astype(int) - samples).max() <= 1
    np.savez(tmp_path / "01.npz", x=nchw / 255)
    back = run(data, {"type": "array", "path": str(tmp_path / "01.npz"), "layout": "NCHW_float", "range": "[0,1]"},
               tmp_path / "o3", 30)
    assert np.abs(back.astype(int) - samples).max() <= 1


class TinyGenerator(nn.Module):
    def __init__(self, latent_dim: int = 4, shape=(1, 8, 8), squash: str = "tanh"):
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = shape
        self.linear = nn.Linear(latent_dim, shape[0] * shape[1] * shape[2])
        self.squash = squash

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z).view(z.shape[0], self.shape[0], self.shape[1], self.shape[2])
        if self.squash == "sigmoid":
            return torch.sigmoid(x)
        if self.squash == "nan":
            return x * float("nan")
        return torch.tanh(x)


def scripted(path, **kwargs):
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyGenerator(**kwargs)), str(path))
    return str(path)


def test_torchscript_is_seeded(data, tmp_path):
    path = scripted(tmp_path / "g.pt")
    spec = {"type": "torchscript", "path": path, "latent_dim": 4}
    a = run(data, spec, tmp_path / "a", 50, seed=0)
    b = run(data, {**spec, "batch_size": 7}, tmp_path / "b", 50, seed=0)
    c = run(data, spec, tmp_path / "c", 50, seed=1)
    np.testing.assert_array_equal(a, b)  # same seed: identical, whatever the batch size
    assert not np.array_equal(a, c)
    assert len(np.unique(a.reshape(50, -1), axis=0)) == 50
    # the same latents, by hand: torch.randn from a seeded CPU generator, tanh output -> uint8
    module = torch.jit.load(path)
    with torch.no_grad():
        x = module(torch.randn(50, 4, generator=torch.Generator().manual_seed(0))).double().numpy()
    assert np.abs(a.astype(int) - np.rint((x + 1) * 127.5).transpose(0, 2, 3, 1)).max() <= 1
    # [0, 1] output and uniform latents
    path01 = scripted(tmp_path / "g01.pt", squash="sigmoid")
    u = run(data, {"type": "torchscript", "path": path01, "latent_dim": 4, "output_range": "[0,1]",
                   "latent_distribution": "uniform"}, tmp_path / "u", 20)
    assert u.dtype == np.uint8 and u.shape == (20, 8, 8, 1)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """An importable module of user code."""
    root = tmp_path_factory.mktemp("plugins")
    (root / "ganaudit_test_plugins.py").write_text(textwrap.dedent('''
        import numpy as np
        import torch


        class Gen(torch.nn.Module):
            latent_dim = 3

            def __init__(self, channels=1):
                super().__init__()
                self.linear = torch.nn.Linear(3, channels * 64)
                self.channels = channels

            def forward(self, z):
                return torch.tanh(self.linear(z)).view(-1, self.channels, 8, 8)


        def load_module(channels=1):
            torch.manual_seed(0)
            return Gen(channels)


        def uint8_sampler(level=0):
            def sample(n, seed):
                rng = np.random.default_rng(seed)
                return rng.integers(level, 256, (n, 8, 8, 1), dtype=np.uint8)
            return sample


        def float_sampler():
            return lambda n, seed: torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


        def bad_shape_sampler():
            return lambda n, seed: np.zeros((n, 8, 8, 3), np.uint8)


        def not_a_sampler():
            return 42


        def broken_sampler():
            def sample(n, seed):
                return helper(n)
            return sample


        def helper(n):
            raise ValueError(f"no weights for n={n}")


        def broken_factory():
            return {}["weights"]
    '''))
    sys.path.insert(0, str(root))
    yield "ganaudit_test_plugins"
    sys.path.remove(str(root))


def test_python_targets(data, plugins, tmp_path):
    mod = run(data, {"type": "python", "target": f"{plugins}:load_module"}, tmp_path / "m", 20, seed=5)
    np.testing.assert_array_equal(mod, run(data, {"type": "python", "target": f"{plugins}:load_module"},
                                           tmp_path / "m2", 20, seed=5))
    u8 = run(data, {"type": "python", "target": f"{plugins}:uint8_sampler", "kwargs": {"level": 200}}, tmp_path / "u", 20, seed=5)
    np.testing.assert_array_equal(u8, np.random.default_rng(5).integers(200, 256, (20, 8, 8, 1), dtype=np.uint8))
    fl = run(data, {"type": "python", "target": f"{plugins}:float_sampler"}, tmp_path / "f", 20, seed=5)
    x = (torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(5)) * 2 - 1).double().numpy()
    assert np.abs(fl.astype(int) - np.rint((x + 1) * 127.5).transpose(0, 2, 3, 1)).max() <= 1


# --- every bad input: one line naming the GAN and the file, exit 2, nothing written ------------

@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, samples):
    """name -> (spec, what the message must contain), the bad files written once."""
    tmp_path = tmp_path_factory.mktemp("bad")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "x.png").write_bytes(b"not a png at all")
    (tmp_path / "three").mkdir()
    write_pngs(samples[:3], tmp_path / "three")
    f = samples.transpose(0, 3, 1, 2).astype(np.float32) / 255
    np.save(tmp_path / "outside.npy", f * 2 - 1)
    nan = f.copy()
    nan[3, 0, 2, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    inf = f.copy()
    inf[0, 0, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    np.save(tmp_path / "float_as_uint8.npy", f)
    np.save(tmp_path / "uint8_as_float.npy", samples.transpose(0, 3, 1, 2))
    np.save(tmp_path / "shape.npy", samples[:, :, :7])
    np.save(tmp_path / "channels.npy", np.repeat(samples, 3, axis=3))
    np.save(tmp_path / "flat.npy", samples.reshape(30, 64))
    np.savez(tmp_path / "two.npz", a=samples, b=samples)
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp_path / "ok.npy", samples)
    ts = lambda file, **kw: scripted(tmp_path / file, **kw)  # noqa: E731
    (tmp_path / "notscript.pt").write_bytes(b"definitely not a zip")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    write_pngs(samples[:4], tmp_path / "image-loop")
    (tmp_path / "image-loop" / "a" / "z.png").symlink_to(tmp_path / "image-loop" / "a" / "z.png")
    return {
        "folder-loop": ({"type": "folder", "path": str(tmp_path / "loop")}, "gans.bad.path: " + str(tmp_path / "loop")
                        + ": a symlink loop"),
        "folder-broken-link": ({"type": "folder", "path": str(tmp_path / "broken")},
                               f"gans.bad.path: {tmp_path / 'broken'}: a broken symlink (to {tmp_path / 'gone'})"),
        "folder-image-loop": ({"type": "folder", "path": str(tmp_path / "image-loop")},
                              "image-loop/a/z.png: a broken symlink or a symlink loop"),
        "array-loop": ({"type": "array", "path": str(tmp_path / "loop")}, "loop: a symlink loop"),
        "folder-missing": ({"type": "folder", "path": str(tmp_path / "nowhere")}, "nowhere: directory not found"),
        "folder-empty": ({"type": "folder", "path": str(tmp_path / "empty")}, "empty: no PNG or JPEG images found"),
        "folder-unreadable": ({"type": "folder", "path": str(tmp_path / "corrupt"), "replace": True},
                              "corrupt/x.png: cannot read image (not a format PIL recognises)"),
        "folder-too-few": ({"type": "folder", "path": str(tmp_path / "three")}, "three: holds 3 samples, the audit asks for 30"),
        "array-missing": ({"type": "array", "path": str(tmp_path / "none.npy")}, "none.npy: file not found"),
        "array-range": ({"type": "array", "path": str(tmp_path / "outside.npy"), "layout": "NCHW_float", "range": "[0,1]"},
                        "outside.npy (samples 0..29): values in [-1, 1], outside the declared range [0,1]"),
        "array-nan": ({"type": "array", "path": str(tmp_path / "nan.npy"), "layout": "NCHW_float", "range": "[0,1]"},
                      "nan.npy (samples 0..29): NaN or infinite values"),
        "array-inf": ({"type": "array", "path": str(tmp_path / "inf.npy"), "layout": "NCHW_float", "range": "[-1,1]"},
                      "inf.npy (samples 0..29): NaN or infinite values"),
        "array-dtype-uint8": ({"type": "array", "path": str(tmp_path / "float_as_uint8.npy")},
                              "float_as_uint8.npy: dtype float32, layout NHWC_uint8 needs uint8"),
        "array-dtype-float": ({"type": "array", "path": str(tmp_path / "uint8_as_float.npy"), "layout": "NCHW_float",
                               "range": "[0,1]"}, "uint8_as_float.npy: dtype uint8, layout NCHW_float needs a float dtype"),
        "array-no-range": ({"type": "array", "path": str(tmp_path / "nan.npy"), "layout": "NCHW_float"},
                           "gans.bad.range: required with layout NCHW_float"),
        "array-shape": ({"type": "array", "path": str(tmp_path / "shape.npy")}, "shape.npy: shape (30, 8, 7, 1), expected NHWC (N, 8, 8, 1)"),
        "array-channels": ({"type": "array", "path": str(tmp_path / "channels.npy")},
                           "channels.npy: 3 channel(s) (shape (30, 8, 8, 3), NHWC), the real images have 1"),
        "array-ndim": ({"type": "array", "path": str(tmp_path / "flat.npy")}, "flat.npy: shape (30, 64), expected NHWC"),
        "array-npz-key": ({"type": "array", "path": str(tmp_path / "two.npz")}, "two.npz: holds arrays ['a', 'b']; set gans.bad.key"),
        "array-npz-wrong-key": ({"type": "array", "path": str(tmp_path / "two.npz"), "key": "c"}, "two.npz: no array 'c'"),
        "array-corrupt": ({"type": "array", "path": str(tmp_path / "corrupt.npy")}, "corrupt.npy: not a readable .npy array"),
        "array-too-few": ({"type": "array", "path": str(tmp_path / "ok.npy")}, "ok.npy: holds 30 samples, the audit asks for 40"),
        "ts-not-torchscript": ({"type": "torchscript", "path": str(tmp_path / "notscript.pt"), "latent_dim": 4},
                               "notscript.pt: not a loadable TorchScript file"),
        "ts-shape": ({"type": "torchscript", "path": ts("rgb.pt", shape=(3, 8, 8)), "latent_dim": 4},
                     "rgb.pt: the generator returned shape (40, 3, 8, 8), expected (40, 1, 8, 8)"),
        "ts-nan": ({"type": "torchscript", "path": ts("nan.pt", squash="nan"), "latent_dim": 4}, "nan.pt: NaN or infinite values"),
        "ts-range": ({"type": "torchscript", "path": ts("tanh.pt"), "latent_dim": 4, "output_range": "[0,1]"},
                     "tanh.pt: values in ["),
        "ts-latent-dim": ({"type": "torchscript", "path": ts("g4.pt"), "latent_dim": 5},
                          "g4.pt: the generator failed on latents of shape (40, 5), is latent_dim right? (RuntimeError: mat1 and mat2"),
        "py-import": ({"type": "python", "target": "no_such_package.gen:make"},
                      "target 'no_such_package.gen:make': cannot import no_such_package.gen (ModuleNotFoundError"),
        "py-attribute": ({"type": "python", "target": "ganaudit_test_plugins:nothing"},
                         "target 'ganaudit_test_plugins:nothing': ganaudit_test_plugins has no attribute 'nothing'"),
        "py-kwargs": ({"type": "python", "target": "ganaudit_test_plugins:uint8_sampler", "kwargs": {"lvl": 1}},
                      "target 'ganaudit_test_plugins:uint8_sampler': does not accept kwargs ['lvl']"),
        "py-returns": ({"type": "python", "target": "ganaudit_test_plugins:not_a_sampler"},
                       "target 'ganaudit_test_plugins:not_a_sampler': returned int, expected a torch.nn.Module"),
        "py-shape": ({"type": "python", "target": "ganaudit_test_plugins:bad_shape_sampler"},
                     "target 'ganaudit_test_plugins:bad_shape_sampler': the sampling function returned shape (40, 8, 8, 3)"),
        "py-module-shape": ({"type": "python", "target": "ganaudit_test_plugins:load_module", "kwargs": {"channels": 3}},
                            "target 'ganaudit_test_plugins:load_module': the generator returned shape (40, 3, 8, 8)"),
        "py-bad-target": ({"type": "python", "target": "pkg.module.function"}, "gans.bad.target: expected 'package.module:function'"),
    }


BAD = ["folder-loop", "folder-broken-link", "folder-image-loop", "array-loop", "folder-missing", "folder-empty", "folder-unreadable", "folder-too-few", "array-missing", "array-range",
       "array-nan", "array-inf", "array-dtype-uint8", "array-dtype-float", "array-no-range", "array-shape",
       "array-channels", "array-ndim", "array-npz-key", "array-npz-wrong-key", "array-corrupt", "array-too-few",
       "ts-not-torchscript", "ts-shape", "ts-nan", "ts-range", "ts-latent-dim", "py-import", "py-attribute",
       "py-kwargs", "py-returns", "py-shape", "py-module-shape", "py-bad-target"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_naming_gan_and_file(data, bad_inputs, plugins, tmp_path, capsys, case):
    spec, expected = bad_inputs[case]
    out = tmp_path / "out"
    n = 30 if case.startswith(("folder", "array")) and case != "array-too-few" else 40
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sample_stage.main, sample_args("bad", spec, data.path, out, n))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ganaudit: error: gans.bad")
    assert expected in err
    assert not out.exists() or not any(out.iterdir())


def test_every_bad_input_is_tested(bad_inputs):
    assert sorted(BAD) == sorted(bad_inputs)


def test_generator_module_gets_latent_interpolations(data, tmp_path):
    """Strip row i walks the straight line between two seeded latents; its ends decode them."""
    from audit.gans import SamplerContext, make_sampler

    path = scripted(tmp_path / "g.pt")
    sampler = make_sampler("ts", {"type": "torchscript", "path": path, "latent_dim": 4}, SamplerContext(data=data))
    strips = sampler.interpolate(3, 5, 2)
    assert strips.shape == (15, 8, 8, 1) and strips.dtype == np.uint8
    ends = torch.randn(6, 4, generator=torch.Generator().manual_seed(2)).view(2, 3, 4)
    module = torch.jit.load(path)
    with torch.no_grad():
        first, last = (np.rint((module(e).double().numpy() + 1) * 127.5).transpose(0, 2, 3, 1) for e in ends)
    assert np.abs(strips[::5].astype(int) - first).max() <= 1
    assert np.abs(strips[4::5].astype(int) - last).max() <= 1
    # the sample stage writes the strips beside the samples
    run(data, {"type": "torchscript", "path": path, "latent_dim": 4}, tmp_path / "out", 20)
    assert (tmp_path / "out" / "interpolation.png").is_file()


def test_interpolation_output_is_declared_by_type(data, plugins, tmp_path, capsys):
    """--interpolation is required exactly for the generator-module types (the rules declare it
    for them); a python sampling function, with no latent space, gets an image saying so."""
    spec = {"type": "python", "target": f"{plugins}:uint8_sampler"}
    run(data, spec, tmp_path / "fn", 20)
    with Image.open(tmp_path / "fn" / "interpolation.png") as image:
        assert image.format == "PNG"
    torchscript = {"type": "torchscript", "path": scripted(tmp_path / "g.pt"), "latent_dim": 4}
    argv = sample_args("ts", torchscript, data.path, tmp_path / "ts", 20)
    assert_cli_error(sample_stage.main, argv[:argv.index("--interpolation")], capsys, "gans.ts", "--interpolation")
    argv = sample_args("mem", {"type": "memoriser", "k": 5}, data.path, tmp_path / "mem", 20)
    assert_cli_error(sample_stage.main, argv + ["--interpolation", str(tmp_path / "x.png")], capsys,
                     "gans.mem", "--interpolation")
    assert not (tmp_path / "ts").exists() and not (tmp_path / "mem").exists()


# --- issue 11: symlinks, the user's own exceptions, nothing before the one line -----------------

def test_folder_follows_symlinked_subfolders_once(data, samples, tmp_path):
    """Issue 11.11: symlinked subfolders were skipped silently. They are followed, each real
    folder once: a second link to one folder adds nothing, a link to an ancestor is no loop.
    Fails if the linked images are missing (today's main: 10 of 20), repeated or out of order."""
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "gan"
    write_pngs(samples[:10], elsewhere)  # elsewhere/a/000..004, elsewhere/b/005..009
    write_pngs(samples[10:20], root)  # gan/a/010..014, gan/b/015..019
    (root / "again").symlink_to(elsewhere)  # walked: between gan/a and gan/b in path order
    (root / "linked").symlink_to(elsewhere)  # the same real folder: adds nothing
    (root / "a" / "up").symlink_to(root)  # a loop
    images = run(data, {"type": "folder", "path": str(root)}, tmp_path / "out", 20)
    np.testing.assert_array_equal(images, np.concatenate([samples[10:15], samples[:10], samples[15:20]]))


def stage_stderr(data, plugins, spec, tmp_path) -> subprocess.CompletedProcess:
    """The sample stage run as Snakemake runs it, in its own process: (exit status, stderr)."""
    plugin_dir = next(p for p in sys.path if os.path.isfile(os.path.join(p, f"{plugins}.py")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin_dir, str(REPO)])}
    return subprocess.run([sys.executable, "-m", "audit.sample", *sample_args("g", spec, data.path, tmp_path, 40)],
                          cwd=REPO, env=env, capture_output=True, text=True)


def test_torchscript_error_is_the_only_line(data, plugins, tmp_path):
    """Issue 11.11: torch 2.14's FutureWarning on torch.jit.load preceded the one line."""
    result = stage_stderr(data, plugins, {"type": "torchscript", "path": scripted(tmp_path / "g4.pt"), "latent_dim": 5},
                          tmp_path / "out")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ganaudit: error: gans.g: ") and "is latent_dim right?" in result.stderr


@pytest.mark.parametrize("target, line", [
    ("broken_sampler", "the sampling function raised ValueError: no weights for n=40 (its traceback follows)"),
    ("broken_factory", "raised KeyError: 'weights' (its traceback follows)"),
])
def test_an_exception_in_user_code_is_one_line_then_its_traceback(data, plugins, tmp_path, target, line):
    """Issue 11.5: an exception in the user's python target ended with a 16-line traceback and
    exit 1. Now the one line (exit 2) comes first, then the traceback of the user's code only."""
    result = stage_stderr(data, plugins, {"type": "python", "target": f"{plugins}:{target}"}, tmp_path / "out")
    assert result.returncode == 2
    first, *rest = result.stderr.splitlines()
    assert first == f"ganaudit: error: gans.g: target '{plugins}:{target}': {line}"
    assert rest[0] == "Traceback (most recent call last):"
    assert f"{plugins}.py" in rest[1] and "audit/" not in "\n".join(rest)
    assert not (tmp_path / "out").exists()
