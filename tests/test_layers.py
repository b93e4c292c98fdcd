"""The package's layers (docs/architecture.md): each folder is a layer, and a module imports
only from its own folder or the layers below it; only the command layer imports argparse, and
nothing else imports the commands; the parser and the Ray driver import no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jkspnet

PACKAGE = Path(jkspnet.__file__).parent

LAYERS = {  # folders (and the few top-level modules) from the bottom up
    0: {"errors"},
    1: {"colour"},
    2: {"media"},
    3: {"nn"},
    4: {"pipeline"},
    5: {"engines", "training"},
    6: {"cluster", "serve"},
    7: {"commands", "batch", "video"},  # batch and video: README's import paths, re-exports
    8: {"cli", "__main__"},
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def _module_name(path: Path) -> str:
    """The folder of a module in a subpackage (``media`` for media/photos.py), else the module's
    file name."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> set[str]:
    """Top-level names of the jkspnet modules (``model``, ``commands``...) and the outside
    modules (``argparse``...) that ``path`` imports anywhere, also inside functions."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.add(parts[1] if parts[0] == "jkspnet" and len(parts) > 1 else parts[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "jkspnet":
                    found.add(parts[0])
                    continue
                inside = parts[1:]
            else:
                base = package[: len(package) - node.level + 1]
                inside = [*base, *(node.module or "").split(".")][1:]
                inside = [part for part in inside if part]
            if inside:
                found.add(inside[0])
            else:  # from . import x: a submodule, or a name of the package itself
                found.update(a.name for a in node.names if a.name in LAYER_OF)
    return found


def _library_modules() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if _module_name(path) not in {"commands", "cli", "__main__", "__init__"}
    ]


def test_every_module_has_a_layer():
    names = {_module_name(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert names == set(LAYER_OF)


def test_the_package_is_folders_with_few_modules_beside_them():
    """The layers are folders: at most five modules beside at least five subpackages."""
    modules = {path.name for path in PACKAGE.glob("*.py")} - {"__init__.py"}
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert len(modules) <= 5, sorted(modules)
    assert len(folders) >= 5, sorted(folders)


def test_no_module_is_over_500_lines():
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text("utf-8").splitlines())) > 500
    }
    assert not long


def test_only_the_command_layer_imports_argparse_or_the_commands():
    for path in _library_modules():
        imports = _imports(path)
        assert "argparse" not in imports, path.name
        assert not imports & {"commands", "cli"}, path.name


def test_modules_import_only_their_own_folder_or_layers_below():
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name == "__init__":
            continue
        above = {
            other
            for other in _imports(path) & set(LAYER_OF)
            if other != name and LAYER_OF[other] >= LAYER_OF[name]
        }
        assert not above, f"{path.relative_to(PACKAGE)} imports {sorted(above)} from above"


def test_parsing_and_the_ray_driver_import_no_torch():
    """The command line's parser and a Ray run's driver touch no pixels: importing torch there
    would cost every ``jkspnet --help`` and every Ray run's start about 1.5 s of CPU."""
    code = (
        "import sys\n"
        "import jkspnet, jkspnet.cluster, jkspnet.batch, jkspnet.media.hints\n"
        "import jkspnet.training.config\n"
        "from jkspnet.commands import build_parser\n"
        "build_parser().parse_args(['colorize', 'in', '-o', 'out', '--ray'])\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    code = "import jkspnet, sys\njkspnet.Colorizer\nprint('torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"  # the public names still come on first use


def _definitions() -> dict[str, list[str]]:
    """Public top-level functions and classes, by name: the modules that define each."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text("utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                found.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    return found


def test_no_public_name_is_defined_in_two_modules():
    """One home per idea; the exceptions are deliberate same-interface pairs: each command's
    ``add_arguments`` and ``run``, each backend's ``load``, and ``colorize_files`` on one machine
    (engines/batch.py) and on Ray (cluster/driver.py), and the full-resolution stages'
    ``lightness`` and ``finish`` on OpenCV for the CPU (colour/pixels.py) and in torch for
    other devices (colour/torch_pixels.py)."""
    same_interface = {"add_arguments", "run", "load", "colorize_files", "lightness", "finish"}
    twice = {name: where for name, where in _definitions().items() if len(where) > 1}
    assert set(twice) <= same_interface, twice


def test_no_class_derives_from_the_pipeline_and_no_private_name_crosses_modules():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "id", getattr(base, "attr", None)) for base in node.bases}
                assert "Colorizer" not in bases, f"{path.relative_to(PACKAGE)}: {node.name}"
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level or (node.module or "").split(".")[0] == "jkspnet":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert set(private) <= {"__version__", "__all__"}, (path.name, private)
