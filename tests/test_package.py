"""`pip install jepa_lab` (a built wheel) carries the library, and the library works without the notebook/dev extras."""
import subprocess, sys, zipfile
from conftest import ROOT

def test_wheel_contains_the_library(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = tmp_path.glob('jepa_lab-*.whl')
    names = zipfile.ZipFile(whl).namelist()
    lib = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'jepa_lab').rglob('*.py'))
    assert len(lib) > 40 and not set(lib) - set(names), sorted(set(lib) - set(names))   # every module, sub-packages included
    assert not any(n.startswith(('nbs/', 'tests/')) for n in names)
    meta = next(zipfile.ZipFile(whl).read(n).decode() for n in names if n.endswith('METADATA'))
    assert 'Requires-Dist: timm' in meta and "extra == \"lab\"" in meta and 'Requires-Dist: papermill' in meta
    assert any(n.endswith('entry_points.txt') and b'jepa-lab = jepa_lab.cli:main' in zipfile.ZipFile(whl).read(n) for n in names)

def test_core_library_needs_no_extras():
    code = ("import sys; import jepa_lab, jepa_lab.data, jepa_lab.views, jepa_lab.models, jepa_lab.losses, jepa_lab.methods, jepa_lab.probes, jepa_lab.train, jepa_lab.eval, jepa_lab.cli;"
            "bad = [m for m in ('matplotlib', 'papermill', 'nbdev', 'plotly', 'IPython', 'fastcore', 'soundfile', 'librosa', 'av', 'transformers', 'peft') if m in sys.modules];"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert r.returncode == 0, r.stderr
