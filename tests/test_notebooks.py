"""Every library notebook runs clean under nbdev-test (their inline tests), one pytest test per notebook."""
import subprocess, sys
import pytest
from conftest import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / 'nbs').glob('[0-9]*.ipynb'))

def test_notebooks_found(): assert len(NOTEBOOKS) >= 9

@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook(name):
    r = subprocess.run(['nbdev-test', f'nbs/{name}'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

def test_readme_is_current():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
