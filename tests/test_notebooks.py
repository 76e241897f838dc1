"""Every library notebook runs clean under nbdev-test (their inline tests), one pytest test per package folder; README and cell ids current."""
import subprocess, sys
import pytest
from conftest import ROOT

# one nbdev-test process per sub-package folder (its notebooks share the process pool's imports) and one per top-level chapter
LIBRARY = ('data', 'views', 'models', 'losses', 'methods', 'train', 'eval', 'probes', 'viz')
NOTEBOOKS = [*LIBRARY, *sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb')]

def test_notebooks_found(): assert sum(1 for d in LIBRARY for p in (ROOT / 'nbs' / d).glob('[0-9]*.ipynb')) >= 45

@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook(name):
    r = subprocess.run(['nbdev-test', f'nbs/{name}'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

def test_readme_is_current():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_every_cell_has_a_stable_id():
    "nbdev writes cell ids into jepa_lab/: a cell without one gets a new random id at each export and the export check fails."
    r = subprocess.run([sys.executable, 'tools/cell_ids.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
