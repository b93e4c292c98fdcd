"""Tests for scripts/build_photo_set.py: the rcc parser, the resize rule and the manifest.

No network and no apt: the rcc bundles are built here in bytes by a tiny writer that
follows Qt's rcc binary layout, and the package step is replaced by a prepared folder.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_photo_set.py"


def _load_script():
    name = "build_photo_set"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


bps = _load_script()


# --------------------------------------------------------------- a tiny rcc writer


def qt_hash(name: str) -> int:
    """qt_hash() over UTF-16 code units, as rcc stores with each name."""
    h = 0
    for unit in struct.unpack(f">{len(name.encode('utf-16-be')) // 2}H", name.encode("utf-16-be")):
        h = ((h << 4) + unit) & 0xFFFFFFFF
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def build_rcc(files: dict[str, tuple[bytes, int]], version: int = 3) -> bytes:
    """An rcc binary bundle holding ``files`` ({'a/b.txt': (data, flags)}).

    flags: 0 plain, 1 zlib (qCompress framing), 4 zstd (payload stored as given).
    Layout as written by Qt's rcc: header, data, names, tree; children of a directory
    are contiguous nodes sorted by name hash, directories laid out breadth first.
    """
    root: dict = {}
    for path, leaf in files.items():
        *dirs, base = path.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})
        node[base] = leaf

    nodes: list[tuple[str, object]] = [("", root)]
    children: dict[int, tuple[int, int]] = {}
    i = 0
    while i < len(nodes):
        obj = nodes[i][1]
        if isinstance(obj, dict):
            kids = sorted(obj.items(), key=lambda kv: qt_hash(kv[0]))
            children[i] = (len(kids), len(nodes))
            nodes.extend(kids)
        i += 1

    data = bytearray()
    names = bytearray()
    tree = bytearray()
    mtime = 1_700_000_000_000
    for index, (name, obj) in enumerate(nodes):
        name_off = 0
        if index:
            name_off = len(names)
            encoded = name.encode("utf-16-be")
            names += struct.pack(">HI", len(encoded) // 2, qt_hash(name)) + encoded
        if isinstance(obj, dict):
            count, first = children[index]
            tree += struct.pack(">IHII", name_off, 0x02, count, first)
        else:
            raw, flags = obj
            payload = raw
            if flags == 0x01:
                payload = struct.pack(">I", len(raw)) + zlib.compress(raw, 9)
            data_off = len(data)
            data += struct.pack(">I", len(payload)) + payload
            tree += struct.pack(">IHHHI", name_off, flags, 0, 1, data_off)
        if version >= 2:
            tree += struct.pack(">Q", 0 if isinstance(obj, dict) else mtime)

    header_len = 24 if version >= 3 else 20
    data_off = header_len
    names_off = data_off + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0x01)
    return bytes(header + data + names + tree)


def _webp_bytes(size=(40, 30), color=(200, 40, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


# --------------------------------------------------------------------- rcc parser


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_nested_plain_and_zlib(version: int) -> None:
    plain = b"plain bytes \x00\x01\x02"
    packed = bytes(range(256)) * 40
    files = {
        "top.txt": (b"top", 0),
        "gcompris/src/activities/a/resource/cat.webp": (plain, 0),
        "gcompris/src/activities/a/resource/dog.bin": (packed, 1),
        "gcompris/src/activities/b/x.txt": (b"xx", 1),
    }
    bundle = bps.RccBundle(build_rcc(files, version))
    assert bundle.version == version
    assert bundle.names() == sorted(files)
    for path, (raw, _) in files.items():
        assert bundle.read(path) == raw
        assert bundle.read("/" + path) == raw  # a leading slash is accepted
    assert bundle.entries["gcompris/src/activities/a/resource/dog.bin"].flags == 1
    assert "top.txt" in bundle
    assert "nope.txt" not in bundle
    with pytest.raises(KeyError):
        bundle.read("gcompris/src/nope.txt")
    if version >= 2:
        assert bundle.entries["top.txt"].last_modified == 1_700_000_000_000


def test_rcc_zstd_entry_is_a_clear_error() -> None:
    bundle = bps.RccBundle(build_rcc({"a/z.webp": (b"\x28\xb5\x2f\xfd...", 4)}), "z.rcc")
    with pytest.raises(bps.RccError, match="zstd"):
        bundle.read("a/z.webp")


def test_rcc_rejects_bad_input() -> None:
    with pytest.raises(bps.RccError, match="qres"):
        bps.RccBundle(b"PK\x03\x04" + b"\x00" * 40)
    good = bytearray(build_rcc({"a.txt": (b"a", 0)}, 2))
    good[4:8] = struct.pack(">I", 9)
    with pytest.raises(bps.RccError, match="version 9"):
        bps.RccBundle(bytes(good))
    with pytest.raises(bps.RccError):
        bps.RccBundle(build_rcc({"a/b.txt": (b"b", 0)}, 3)[:-10])


def test_rcc_corrupt_zlib_entry() -> None:
    blob = bytearray(build_rcc({"a.bin": (b"hello" * 50, 1)}, 3))
    blob[24 + 4 + 4 + 2] ^= 0xFF  # inside the zlib stream
    bundle = bps.RccBundle(bytes(blob))
    with pytest.raises(bps.RccError):
        bundle.read("a.bin")


def test_load_source_reads_inside_a_bundle(tmp_path: Path) -> None:
    webp = _webp_bytes()
    rcc_dir = tmp_path / "usr/share/app/rcc"
    rcc_dir.mkdir(parents=True)
    (rcc_dir / "b.rcc").write_bytes(build_rcc({"img/cat.webp": (webp, 1)}, 3))
    (tmp_path / "usr/share/app/plain.jpg").write_bytes(b"jpeg")
    (tmp_path / "usr/share/app/link.jpg").symlink_to("/usr/share/app/plain.jpg")
    cache: dict = {}
    assert bps.load_source(tmp_path, "usr/share/app/rcc/b.rcc:img/cat.webp", cache) == webp
    assert list(cache) == ["usr/share/app/rcc/b.rcc"]
    assert bps.load_source(tmp_path, "usr/share/app/link.jpg", cache) == b"jpeg"
    with pytest.raises(bps.MissingPhoto):
        bps.load_source(tmp_path, "usr/share/app/rcc/b.rcc:img/dog.webp", cache)
    with pytest.raises(bps.MissingPhoto):
        bps.load_source(tmp_path, "usr/share/app/none.jpg", cache)


# ------------------------------------------------------------------ resize rule


@pytest.mark.parametrize(
    ("size", "short", "expected"),
    [
        ((1000, 500), 256, (512, 256)),
        ((500, 1000), 256, (256, 512)),
        ((640, 480), 256, (341, 256)),
        ((2560, 1600), 256, (410, 256)),
        ((300, 300), 256, (256, 256)),
        ((256, 900), 256, (256, 900)),  # already at the target: untouched
        ((200, 100), 256, (200, 100)),  # never upscale
        ((320, 188), 256, (320, 188)),
        ((1000, 500), 0, (1000, 500)),  # 0 keeps the full size
        ((10000, 3), 2, (6667, 2)),
    ],
)
def test_target_size(size, short, expected) -> None:
    assert bps.target_size(*size, short) == expected


def _gradient(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 128 + 0 * x], -1)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_convert_photo_resizes_down_only() -> None:
    img, original = bps.convert_photo(_encode(_gradient(640, 480), "PNG"), 256)
    assert original == (640, 480)
    assert img.size == (341, 256)
    assert img.mode == "RGB"
    small, original = bps.convert_photo(_encode(_gradient(200, 120), "PNG"), 256)
    assert original == small.size == (200, 120)
    full, _ = bps.convert_photo(_encode(_gradient(640, 480), "PNG"), 0)
    assert full.size == (640, 480)


def test_save_jpeg_writes_a_photo_that_compresses_to_more_than_a_byte_per_pixel(
    tmp_path: Path,
) -> None:
    """Noise at quality 92, 4:4:4, outgrows Pillow's default optimize buffer (one of the
    listed backgrounds did); the photo is written whole, and nothing else is left."""
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (256, 477, 3), dtype=np.uint8))
    dest = tmp_path / "noisy.jpg"
    size = bps.save_jpeg(noisy, dest, 92)
    assert size > noisy.width * noisy.height
    with Image.open(dest) as written:
        written.load()
        assert written.size == noisy.size
    assert [p.name for p in tmp_path.iterdir()] == ["noisy.jpg"]


def test_convert_photo_flattens_alpha_onto_white_and_applies_exif() -> None:
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (10, 0, 20, 10))  # right half fully transparent
    img, _ = bps.convert_photo(_encode(rgba, "PNG"), 256)
    assert img.getpixel((2, 5)) == (255, 0, 0)
    assert img.getpixel((15, 5)) == (255, 255, 255)

    rotated = _gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    rotated.save(buf, "JPEG", exif=exif)
    upright, original = bps.convert_photo(buf.getvalue(), 256)
    assert original == upright.size == (20, 40)


# --------------------------------------------------------------- names, manifest


def test_output_names_are_stable_and_safe() -> None:
    name = bps.output_name(
        "gcompris-qt-data",
        "usr/share/gcompris-qt/rcc/erase.rcc:gcompris/src/activities/erase/resource/cat 1.webp",
    )
    assert name == (
        "gcompris-qt-data__gcompris-qt_rcc_erase.rcc__gcompris_src_activities_erase_resource_cat-1.jpg"
    )
    assert bps.output_name("p", "usr/share/x/a.png") == "p__x_a.jpg"
    long = bps.output_name("p", "usr/share/" + "d/" * 150 + "a.jpg")
    assert len(long) <= bps.MAX_NAME_LEN and long.endswith(".jpg")
    assert long == bps.output_name("p", "usr/share/" + "d/" * 150 + "a.jpg")


def test_a_scoped_npm_package_names_files_and_finds_its_cached_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``@scope/name`` is written ``scope-name``, as ``npm pack`` names its tarball: no ``/`` in
    an output name (a folder), and the cached tarball is found rather than fetched again."""
    package = "@creative-tim-official/argon-dashboard"
    assert bps.output_name(package, "package/assets/img/vr-bg.jpg") == (
        "creative-tim-official-argon-dashboard__assets_img_vr-bg.jpg"
    )
    monkeypatch.setitem(bps.PACKAGES, package, bps.Package("scenes", "MIT", "npm", "2.0.4"))
    cached = tmp_path / "npm" / "creative-tim-official-argon-dashboard-2.0.4.tgz"
    cached.parent.mkdir()
    cached.write_bytes(b"")
    monkeypatch.setattr(bps, "_run", lambda *a: pytest.fail("fetched a cached tarball again"))
    assert bps.fetch_archive(package, tmp_path) == cached


def test_read_list_rejects_colliding_names(tmp_path: Path) -> None:
    lst = tmp_path / "list.csv"
    lst.write_text("package,path_in_package\np,usr/share/a/b.jpg\np,usr/share/a/b.png\n")
    with pytest.raises(ValueError, match="both map to"):
        bps.read_list(lst)


def test_save_jpeg_and_manifest_are_atomic(tmp_path: Path) -> None:
    size = bps.save_jpeg(_gradient(64, 48), tmp_path / "a.jpg", 92)
    assert size == (tmp_path / "a.jpg").stat().st_size > 0
    with Image.open(tmp_path / "a.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (64, 48)
    row = {
        "file": "a.jpg",
        "package": "pkg",
        "package_version": "1:2.0-1",
        "path_in_package": "usr/share/x.rcc:a, b.webp",
        "width": 640,
        "height": 480,
        "licence": "CC-BY-SA / CC-BY / public domain (per file)",
        "split": "train",
        "group": "objects",
    }
    bps.write_manifest(tmp_path / "manifest.csv", [row])
    with open(tmp_path / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == bps.MANIFEST_COLUMNS
    assert rows == [{k: str(row[k]) for k in bps.MANIFEST_COLUMNS}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "manifest.csv"]


# ------------------------------------------------------------ end to end, offline


def test_main_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pkg_root = tmp_path / "pkgroot"
    (pkg_root / "usr/share/app/rcc").mkdir(parents=True)
    (pkg_root / "usr/share/app/big.png").write_bytes(_encode(_gradient(600, 400), "PNG"))
    (pkg_root / "usr/share/app/rcc/r.rcc").write_bytes(
        build_rcc(
            {
                "res/img/cat.webp": (_webp_bytes((300, 500)), 0),
                "res/img/dog.webp": (_webp_bytes((100, 80)), 1),
            },
            3,
        )
    )
    lst = tmp_path / "list.csv"
    lst.write_text(
        "package,path_in_package\n"
        "gcompris-qt-data,usr/share/app/rcc/r.rcc:res/img/cat.webp\n"
        "gcompris-qt-data,usr/share/app/big.png\n"
        "gcompris-qt-data,usr/share/app/rcc/r.rcc:res/img/gone.webp\n"
        "nosuch-pkg,usr/share/x.jpg\n"
        "gcompris-qt-data,usr/share/app/rcc/r.rcc:res/img/dog.webp\n"
    )

    def fake_fetch(package: str, debs: Path) -> Path:
        if package == "nosuch-pkg":
            raise bps.FetchError("apt-get download nosuch-pkg failed; run 'apt-get update'")
        return debs / f"{package}_1.0-1_all.deb"

    monkeypatch.setattr(bps, "fetch_deb", fake_fetch)
    monkeypatch.setattr(bps, "deb_version", lambda deb: "1:1.0-1")
    monkeypatch.setattr(
        bps, "extract_deb", lambda deb, dest: shutil.copytree(pkg_root, dest, dirs_exist_ok=True)
    )
    out = tmp_path / "out"
    args = ["--out", str(out), "--list", str(lst), "--debs", str(tmp_path / "debs")]
    code = bps.main([*args, "--short-side", "256"])
    printed = capsys.readouterr()
    assert code == 1
    assert "missing photo gcompris-qt-data,usr/share/app/rcc/r.rcc:res/img/gone.webp" in printed.out
    assert "missing package nosuch-pkg" in printed.out
    assert "2 listed photo(s) missing" in printed.err
    assert "wrote 3 of 5 photos" in printed.out

    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path_in_package"].rsplit("/", 1)[-1] for r in rows] == [
        "cat.webp",
        "big.png",
        "dog.webp",
    ]
    assert [(r["width"], r["height"]) for r in rows] == [
        ("300", "500"),
        ("600", "400"),
        ("100", "80"),
    ]
    assert {r["package_version"] for r in rows} == {"1:1.0-1"}
    assert {r["licence"] for r in rows} == {"CC-BY-SA / CC-BY / public domain (per file)"}
    sizes = {}
    for r in rows:
        with Image.open(out / r["file"]) as im:
            sizes[r["path_in_package"].rsplit("/", 1)[-1]] = im.size
    assert sizes == {"cat.webp": (256, 427), "big.png": (384, 256), "dog.webp": (100, 80)}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(r["file"] for r in rows), "manifest.csv", "train.txt", "val.txt"]
    )
    # No default validation source is in this list: everything is for training.
    assert {r["split"] for r in rows} == {"train"}
    assert (out / "train.txt").read_text().split() == [r["file"] for r in rows]
    assert (out / "val.txt").read_text() == ""


def test_main_holds_out_whole_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg_root = tmp_path / "pkgroot"
    (pkg_root / "usr/share").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (pkg_root / f"usr/share/{name}.png").write_bytes(_encode(_gradient(64, 48), "PNG"))
    lst = tmp_path / "list.csv"
    lst.write_text(
        "package,path_in_package\n"
        "pkg-one,usr/share/a.png\n"
        "pkg-two,usr/share/b.png\n"
        "pkg-one,usr/share/c.png\n"
    )
    monkeypatch.setattr(bps, "fetch_deb", lambda package, debs: debs / f"{package}_1_all.deb")
    monkeypatch.setattr(bps, "deb_version", lambda deb: "1")
    monkeypatch.setattr(
        bps, "extract_deb", lambda deb, dest: shutil.copytree(pkg_root, dest, dirs_exist_ok=True)
    )
    out = tmp_path / "out"
    args = ["--out", str(out), "--list", str(lst), "--debs", str(tmp_path / "debs")]
    assert bps.main([*args, "--val-sources", "pkg-two"]) == 0
    with open(out / "manifest.csv", newline="") as fh:
        split = {r["file"]: r["split"] for r in csv.DictReader(fh)}
    assert split == {
        "pkg-one__a.jpg": "train",
        "pkg-two__b.jpg": "val",
        "pkg-one__c.jpg": "train",
    }
    assert (out / "val.txt").read_text() == "pkg-two__b.jpg\n"
    assert (out / "train.txt").read_text().split() == [
        "pkg-one__a.jpg",
        "pkg-one__c.jpg",
    ]
    # A source that is not in the list is a usage error, before any work.
    assert bps.main([*args, "--out", str(tmp_path / "o2"), "--val-sources", "nope"]) == 2


# ---------------------------------------------------------------- photo set v3 (issue 22)


def _jpeg_bytes(size: tuple[int, int]) -> bytes:
    return _encode(_gradient(*size), "JPEG")


def test_largest_jpeg_is_cut_out_of_a_container(tmp_path: Path) -> None:
    small, big = _jpeg_bytes((40, 30)), _jpeg_bytes((120, 80))
    blob = b"EET\x00header" + small + b"\x00" * 7 + big + b"trailing index" + _jpeg_bytes((60, 20))
    with Image.open(io.BytesIO(bps.largest_jpeg(blob))) as im:
        assert im.size == (120, 80)
    (tmp_path / "usr/share/bg").mkdir(parents=True)
    (tmp_path / "usr/share/bg/Hills.edj").write_bytes(blob)
    data = bps.load_source(tmp_path, "usr/share/bg/Hills.edj:jpeg", {})
    assert Image.open(io.BytesIO(data)).size == (120, 80)
    with pytest.raises(bps.MissingPhoto, match="only ':jpeg'"):
        bps.load_source(tmp_path, "usr/share/bg/Hills.edj:png", {})
    with pytest.raises(bps.MissingPhoto, match="no decodable JPEG"):
        bps.largest_jpeg(b"\xff\xd8\xff broken" + b"\x00" * 50)


def test_cutouts_keep_their_alpha_as_png(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (10, 0, 20, 10))
    img, _ = bps.convert_photo(_encode(rgba, "PNG"), 256, keep_alpha=True)
    assert img.mode == "RGBA" and img.getpixel((15, 5))[3] == 0
    opaque, _ = bps.convert_photo(
        _encode(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), "PNG"), 0, True
    )
    assert opaque.mode == "RGB"  # nothing transparent: a plain photo
    name = bps.output_name("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps/a/frog.png")
    assert name == "tuxpaint-stamps-default__tuxpaint_stamps_a_frog.png"
    bps.save_jpeg(img, tmp_path / name, 92)
    with Image.open(tmp_path / name) as im:
        assert im.format == "PNG" and im.mode == "RGBA" and im.getpixel((15, 5))[3] == 0
    assert bps.output_name("material-kit", "package/assets/img/faces/kendall.jpg") == (
        "material-kit__assets_img_faces_kendall.jpg"
    )


def test_read_list_groups(tmp_path: Path) -> None:
    lst = tmp_path / "list.csv"
    lst.write_text("package,path_in_package,group\np,a.jpg,people\np,b.jpg\n")
    assert [p.group for p in bps.read_list(lst)] == ["people", ""]
    lst.write_text("package,path_in_package,group\np,a.jpg,faces\n")
    with pytest.raises(ValueError, match="bad group 'faces'"):
        bps.read_list(lst)
    lst.write_text("package,path_in_package\np,a.jpg,people\n")
    with pytest.raises(ValueError, match="bad row"):
        bps.read_list(lst)


def test_shipped_list_names_a_record_for_every_package() -> None:
    # The builder falls back quietly (Debian, a copyright path, no group) for a package missing
    # from its table, so a package added to the list alone would build with a wrong manifest.
    packages = {p.package for p in bps.read_list(bps.DEFAULT_LIST)}
    assert packages == bps.PACKAGES.keys()
    for name, package in bps.PACKAGES.items():
        assert package.group in bps.GROUPS, name
        assert package.licence.strip(), name
        assert package.registry in ("debian", "pypi", "npm"), name
        assert bool(package.version) == (package.registry != "debian"), name
    assert set(bps.DEFAULT_VAL_SOURCES) <= packages
    assert packages & bps.RESERVED == set()


def test_a_package_outside_the_table_is_a_debian_one_with_its_copyright_file() -> None:
    record = bps.package_record("some-debian-package")
    assert record.registry == "debian" and not record.cutout
    assert record.licence == "see /usr/share/doc/some-debian-package/copyright"
    assert record.group == ""
    assert bps.package_record("material-kit").registry != "debian"
    assert bps.package_record("tuxpaint-stamps-default").cutout


def test_archives_are_taken_from_the_cache_or_fail_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    (cache / "pypi").mkdir(parents=True)
    wheel = cache / "pypi" / "mvtb_data-1.6.1-py3-none-any.whl"
    wheel.write_bytes(b"zip")
    monkeypatch.setattr(bps, "_run", lambda *a, **k: pytest.fail("no download when cached"))
    assert bps.fetch_package("mvtb-data", tmp_path / "debs", cache) == (wheel, "1.6.1")

    failed = bps.subprocess.CompletedProcess([], 1, "", "npm error 404 Not Found - GET ...\n")
    monkeypatch.setattr(bps, "_run", lambda *a, **k: failed)
    with pytest.raises(bps.FetchError, match="404 Not Found"):
        bps.fetch_package("material-kit", tmp_path / "debs", cache)
    for reserved in ("scratch", "foolbox", "tabler-ui"):
        with pytest.raises(bps.FetchError, match="reserved"):
            bps.fetch_package(reserved, tmp_path / "debs", cache)


def test_wheels_and_tarballs_unpack_inside_the_folder(tmp_path: Path) -> None:
    import tarfile
    import zipfile

    wheel = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/images/a.jpg", b"jpeg")
    bps.extract_archive(wheel, tmp_path / "w")
    assert (tmp_path / "w/pkg/images/a.jpg").read_bytes() == b"jpeg"
    evil = tmp_path / "evil-1-py3-none-any.whl"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.jpg", b"x")
    with pytest.raises(bps.FetchError, match="leaves the folder"):
        bps.extract_archive(evil, tmp_path / "e")
    assert not (tmp_path / "outside.jpg").exists()
    tgz = tmp_path / "t-1.0.0.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("package/assets/img/b.jpg")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"jpeg"))
    bps.extract_archive(tgz, tmp_path / "t")
    assert (tmp_path / "t/package/assets/img/b.jpg").read_bytes() == b"jpeg"
    (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
    with pytest.raises(bps.FetchError, match="cannot unpack"):
        bps.extract_archive(tmp_path / "bad.tgz", tmp_path / "b")


def test_main_builds_npm_and_cutouts_with_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "pkgroot"
    (root / "package/img").mkdir(parents=True)
    (root / "package/img/face.jpg").write_bytes(_jpeg_bytes((64, 48)))
    (root / "usr/share/stamps").mkdir(parents=True)
    rgba = Image.new("RGBA", (30, 30), (0, 200, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 10, 30))
    (root / "usr/share/stamps/leaf.png").write_bytes(_encode(rgba, "PNG"))
    lst = tmp_path / "list.csv"
    lst.write_text(
        "package,path_in_package,group\n"
        "material-kit,package/img/face.jpg\n"
        "tuxpaint-stamps-default,usr/share/stamps/leaf.png,scenes\n"
    )
    archive = tmp_path / "material-kit-2.0.4.tgz"
    monkeypatch.setattr(bps, "fetch_archive", lambda package, cache: archive)
    monkeypatch.setattr(bps, "fetch_deb", lambda package, debs: debs / f"{package}_1_all.deb")
    monkeypatch.setattr(bps, "deb_version", lambda deb: "2022.06.04-1")
    copy = lambda *a: shutil.copytree(root, a[-1], dirs_exist_ok=True)  # noqa: E731
    monkeypatch.setattr(bps, "extract_deb", copy)
    monkeypatch.setattr(bps, "extract_archive", copy)
    out = tmp_path / "out"
    assert bps.main(["--out", str(out), "--list", str(lst), "--val-sources", "material-kit"]) == 0
    with open(out / "manifest.csv", newline="") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    face = rows["material-kit__img_face.jpg"]
    assert (face["package_version"], face["split"], face["group"]) == ("2.0.4", "val", "people")
    assert face["licence"].startswith("MIT")
    leaf = rows["tuxpaint-stamps-default__stamps_leaf.png"]
    assert (leaf["split"], leaf["group"]) == ("train", "scenes")
    with Image.open(out / leaf["file"]) as im:
        assert im.mode == "RGBA" and im.getpixel((2, 2))[3] == 0

    lst.write_text("package,path_in_package\nfoolbox,foolbox/data/a.png\n")
    assert bps.main(["--out", str(tmp_path / "o2"), "--list", str(lst)]) == 2
    assert "reserved for independent evaluation" in capsys.readouterr().err
