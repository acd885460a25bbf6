"""The import contracts of setup.cfg's ``[importlinter]`` sections hold (DESIGN §1, STYLE §14).

``setup.cfg`` maps folders at the repository root (``tracking/``, ``qa_compiler/``, ...) into the
``recon4d`` namespace; import-linter (grimp) walks one directory per package, so the check runs
on a copy of the sources laid out as they are installed (what a wheel holds).
"""

import ast
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_layout(target: Path) -> Path:
    """Copy every package of setup.cfg's ``package_dir`` to where it lands when installed."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mapping = dict(line.split("=") for line in config["options"]["package_dir"].split("\n") if "=" in line)
    for package, folder in sorted(((p.strip(), f.strip()) for p, f in mapping.items()), key=lambda item: item[0]):
        shutil.copytree(ROOT / folder, target.joinpath(*package.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_import_contracts_hold(tmp_path):
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is part of recon4d[dev]; install it with `pip install -e '.[dev]'`"
    staged = installed_layout(tmp_path / "src")
    result = subprocess.run([lint, str(ROOT / "setup.cfg"), "--no-cache"], cwd=staged,
                            capture_output=True, text=True, env={"PYTHONPATH": str(staged), "PATH": ""})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "0 broken" in result.stdout


def test_no_private_names_cross_modules():
    """``from recon4d.x import _name`` only inside the module's own package (ruff's PLC2701 allows any
    import within a top-level package, so this one rule is checked here)."""
    offenders = []
    for folder in ("recon4d", "tracking", "orient", "qa_compiler", "vlm", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recon4d"):
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                    if private:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {private} from {node.module}")
    assert not offenders, "\n".join(offenders)
