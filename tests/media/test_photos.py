"""Reading any kind of photo, refusing bad ones clearly, writing results safely."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jkspnet.errors import PhotoError, PhotoTooLargeError
from jkspnet.media.photos import Photo, find_photos, load_photo, output_format, save_photo

from ..hostile import BAD, EDITS, bomb_png, check_photo, deny_reading, mutate, seed_photos


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


@pytest.fixture
def rgb(astronaut) -> Image.Image:
    return Image.fromarray(astronaut)


def test_rgb_and_grey(tmp_path, rgb):
    photo = load_photo(_save(rgb, tmp_path / "a.png"))
    assert photo.pixels.shape == (rgb.height, rgb.width, 3) and photo.alpha is None
    assert photo.size == rgb.size
    grey = load_photo(_save(rgb.convert("L"), tmp_path / "g.png"))
    assert grey.pixels.shape == (rgb.height, rgb.width) and grey.pixels.dtype == np.uint8


def test_alpha_is_kept(tmp_path, rgb):
    alpha = Image.linear_gradient("L").resize(rgb.size)
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    photo = load_photo(_save(rgba, tmp_path / "a.png"))
    np.testing.assert_array_equal(photo.alpha, np.asarray(alpha))
    la = rgb.convert("L")
    la.putalpha(alpha)
    photo = load_photo(_save(la, tmp_path / "la.png"))
    assert photo.pixels.ndim == 2
    np.testing.assert_array_equal(photo.alpha, np.asarray(alpha))


def test_palette_with_and_without_transparency(tmp_path, rgb):
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    assert load_photo(_save(palette, tmp_path / "p.png")).alpha is None
    photo = load_photo(_save(palette, tmp_path / "pt.png", transparency=0))
    assert photo.alpha is not None and (photo.alpha == 0).any()


def test_16bit_grey_keeps_its_precision(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = _save(Image.fromarray(ramp), tmp_path / "deep.png")
    photo = load_photo(path)
    assert photo.pixels.dtype == np.float32 and photo.pixels.shape == (64, 64)
    np.testing.assert_allclose(photo.pixels, ramp / 65535, atol=1e-6)


def test_cmyk_and_one_bit(tmp_path, rgb):
    assert load_photo(_save(rgb.convert("CMYK"), tmp_path / "c.jpg")).pixels.shape[2] == 3
    assert load_photo(_save(rgb.convert("1"), tmp_path / "b.png")).pixels.ndim == 2


def test_exif_orientation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = _save(rgb, tmp_path / "r.jpg", exif=exif)
    assert load_photo(path).size == (rgb.height, rgb.width)


@pytest.mark.parametrize("source", [".jpg", ".tiff"])
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tiff", ".webp"])
def test_exif_and_dpi_travel_to_the_colour_copy(tmp_path, rgb, colorizer, source, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: applied to the pixels, so not kept
    exif[0x013B] = "Grandma"  # artist
    exif[0x0100] = 3000  # image width, as a scanner may copy it into EXIF: not kept
    exif.get_ifd(0x8769)[0x9003] = "1952:07:14 10:00:00"  # date taken, in the Exif IFD
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPS latitude reference
    scan = tmp_path / f"scan{source}"
    rgb.convert("L").resize((96, 64)).save(scan, exif=exif, dpi=(600, 600))
    photo = load_photo(scan)
    assert photo.metadata["dpi"] == (600.0, 600.0)  # TIFF gives it as a rational
    colour = colorizer.colorize(photo)
    save_photo(colour, tmp_path / f"colour{suffix}")
    with Image.open(tmp_path / f"colour{suffix}") as written:
        written.load()  # a TIFF whose EXIF overrode its layout would fail here
        kept = written.getexif()
        assert kept.get(0x013B) == "Grandma" and kept.get(0x0100) in (None, written.width)
        if source == ".jpg":  # (PIL writes no Exif or GPS IFD into the TIFF source itself)
            assert kept.get_ifd(0x8769).get(0x9003) == "1952:07:14 10:00:00"
            assert kept.get_ifd(0x8825).get(0x0001) == "N"
        assert kept.get(0x0112) is None  # a viewer must not turn it a second time
        if source == ".jpg":  # (nor applies a TIFF's orientation)
            assert written.size == (64, 96)
        if suffix != ".webp":  # WebP has no resolution field
            assert written.info["dpi"] == pytest.approx((600, 600), abs=0.01)


def test_no_metadata_writes_none(tmp_path, rgb, fresh_weights, capsys):
    from jkspnet.cli import main

    exif = Image.Exif()
    exif[0x013B] = "Grandma"
    rgb.convert("L").resize((48, 32)).save(tmp_path / "scan.jpg", exif=exif, dpi=(600, 600))
    for flag, out in (([], "kept.png"), (["--no-metadata"], "bare.png")):
        args = [tmp_path / "scan.jpg", "-o", tmp_path / out, "--weights", fresh_weights]
        assert main(["colorize", *map(str, args), *flag]) == 0
    with Image.open(tmp_path / "kept.png") as kept, Image.open(tmp_path / "bare.png") as bare:
        assert kept.getexif().get(0x013B) == "Grandma" and "dpi" in kept.info
        assert not bare.getexif() and "dpi" not in bare.info


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_damaged_exif_is_left_out_not_fatal(tmp_path, rgb, colorizer):
    path = tmp_path / "odd.jpg"
    rgb.convert("L").resize((48, 32)).save(
        path, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x01" * 9
    )
    photo = load_photo(path)  # whatever PIL makes of that EXIF, the photo itself is fine
    assert "exif" not in photo.metadata
    save_photo(colorizer.colorize(photo), tmp_path / "odd-colour.jpg")
    assert Image.open(tmp_path / "odd-colour.jpg").size == (48, 32)


def test_animated_gif_takes_the_first_frame(tmp_path, rgb):
    frames = [rgb.convert("P"), rgb.rotate(90).convert("P")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    photo = load_photo(path)
    assert photo.size == rgb.size and "2 frames" in photo.note


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello, I am text\n" * 10, "not an image"),
        (BAD["unsupported format (SVG)"].make(None), "a format this program cannot read"),
        (BAD["unsupported mode (float TIFF)"].make(None), "unsupported image mode F"),
    ],
)
def test_bad_files_name_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=reason) as caught:
        load_photo(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_photos(tmp_path, rgb, fmt):
    buffer = io.BytesIO()
    rgb.save(buffer, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(PhotoError, match="truncated or corrupt"):
        load_photo(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PhotoError, match="no such file"):
        load_photo(tmp_path / "nope.jpg")
    with pytest.raises(PhotoError, match="is a folder"):
        load_photo(tmp_path)


def test_pixel_limit_is_checked_before_decoding(tmp_path, rgb):
    path = _save(rgb, tmp_path / "big.png")
    with pytest.raises(PhotoError, match="over the limit"):
        load_photo(path, max_pixels=1000)


def test_save_is_atomic_and_never_clobbers(tmp_path, rgb):
    target = tmp_path / "out" / "a.jpg"
    save_photo(rgb, target)
    first = target.read_bytes()
    with pytest.raises(FileExistsError):
        save_photo(rgb.convert("L"), target)
    assert target.read_bytes() == first
    save_photo(rgb.convert("L").convert("RGB"), target, overwrite=True)
    assert target.read_bytes() != first
    assert [p.name for p in target.parent.iterdir()] == ["a.jpg"]  # no temporary left behind


def test_failed_save_leaves_nothing(tmp_path, rgb, monkeypatch):
    def broken_save(self, stream, *args, **kwargs):
        stream.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_photo(rgb, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_jpeg_output_drops_alpha(tmp_path, rgb):
    rgba = rgb.copy()
    rgba.putalpha(128)
    save_photo(rgba, tmp_path / "a.jpg")
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"


def test_output_format_rules():
    assert output_format(Path("a.JPG")) == ("JPEG", ".JPG")
    assert output_format(Path("a.gif")) == ("PNG", ".png")
    assert output_format(Path("a.jpg"), "webp") == ("WEBP", ".webp")
    with pytest.raises(ValueError, match="unknown output format"):
        output_format(Path("a.jpg"), "gif")


def test_find_photos(tmp_path, rgb):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ["a.jpg", "b.PNG", "notes.txt", ".hidden.jpg", "sub/c.webp", "sub/deeper/d.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")  # a link back up must not loop forever

    flat = find_photos([str(tmp_path)])
    assert [rel.as_posix() for _, rel in flat.photos] == ["a.jpg", "b.PNG"]
    deep = find_photos([str(tmp_path)], recursive=True)
    assert [rel.as_posix() for _, rel in deep.photos] == [
        "a.jpg",
        "b.PNG",
        "sub/c.webp",
        "sub/deeper/d.jpg",
    ]
    globbed = find_photos([str(tmp_path / "*.jpg"), str(tmp_path / "a.jpg")])
    assert [p.name for p, _ in globbed.photos] == ["a.jpg"]  # duplicates collapse

    empty = tmp_path / "empty"
    empty.mkdir()
    found = find_photos([str(empty), str(tmp_path / "missing.jpg"), str(tmp_path / "*.bmp")])
    assert found.photos == []
    reasons = [problem.reason for problem in found.problems]
    assert reasons == [
        "no photos found in this folder",
        "no such file or folder",
        "no files match this pattern",
    ]


def test_a_declared_huge_photo_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(40_000, 40_000))
    with pytest.raises(
        PhotoTooLargeError, match="40000x40000 is 1,600,000,000 pixels, over the limit"
    ):
        load_photo(path)
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own guard is left as it was


def test_link_loops_are_named_not_followed(tmp_path, rgb):
    _save(rgb, tmp_path / "real.png")
    os.symlink("self.jpg", tmp_path / "self.jpg")
    os.symlink("b.jpg", tmp_path / "a.jpg")
    os.symlink("a.jpg", tmp_path / "b.jpg")
    found = find_photos([str(tmp_path), str(tmp_path / "self.jpg")])
    assert [path.name for path, _ in found.photos] == ["a.jpg", "b.jpg", "real.png", "self.jpg"]
    for path, _ in found.photos:
        if path.name != "real.png":
            with pytest.raises(PhotoError, match=r"symbolic link loop$"):
                load_photo(path)
    assert load_photo(tmp_path / "real.png").size == rgb.size


def test_an_unreadable_photo_is_named(tmp_path, rgb, monkeypatch):
    path = _save(rgb, tmp_path / "secret.png")
    deny_reading(path, monkeypatch)
    with pytest.raises(PhotoError, match=r"secret\.png: permission denied$"):
        load_photo(path)


# ------------------------------------------------------------------------------- fuzzing
_SEEDS = seed_photos(Image.fromarray(skimage.data.astronaut()))
_FUZZ_LIMIT = 4_000_000  # a mutated header may declare gigapixels; keep each try small


def _load_bytes(data: bytes) -> Photo | PhotoError:
    """load_photo on ``data``; any exception but a PhotoError escapes and fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed"
        path.write_bytes(data)
        try:
            return load_photo(path, max_pixels=_FUZZ_LIMIT)
        except PhotoError as error:
            assert error.reason and "\n" not in str(error)
            return error


_EDIT = st.tuples(st.sampled_from(EDITS), st.integers(0, 1 << 20), st.integers(0, 0xFFFF))


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL on corrupt EXIF: not our concern
@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(sorted(_SEEDS)), edits=st.lists(_EDIT, min_size=1, max_size=6))
def test_mutated_photos_load_or_raise_a_photo_error(seed, edits):
    result = _load_bytes(mutate(_SEEDS[seed], edits))
    if isinstance(result, Photo):
        check_photo(result, _FUZZ_LIMIT)
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own guard is back in place


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=120, deadline=None)
@given(
    seed=st.sampled_from(["png", "jpeg", "jpeg-progressive"]),
    width=st.integers(0, 0xFFFF),
    height=st.integers(0, 0xFFFF),
)
def test_a_header_that_lies_about_the_size(seed, width, height):
    result = _load_bytes(mutate(_SEEDS[seed], [("declare-size", width, height)]))
    if width * height > _FUZZ_LIMIT:
        assert isinstance(result, PhotoTooLargeError)
    elif isinstance(result, Photo):
        assert result.size == (width, height)
        check_photo(result, _FUZZ_LIMIT)
