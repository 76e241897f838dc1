"""Every library notebook runs clean under nbdev-test (their inline tests), one pytest test per package folder; README and cell ids current;
report notebooks write only under their out_dir."""
import json, subprocess, sys
import pytest
from conftest import ROOT

# one nbdev-test process per sub-package folder (its notebooks share the process pool's imports) and one per top-level chapter
LIBRARY = ('data', 'views', 'models', 'losses', 'methods', 'train', 'eval', 'probes', 'viz')
NOTEBOOKS = [*LIBRARY, *sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb')]

def test_notebooks_found(): assert sum(1 for d in LIBRARY for p in (ROOT / 'nbs' / d).glob('[0-9]*.ipynb')) >= 44

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

REPORTS = sorted(p for d in ('experiments', 'viz') for p in (ROOT / 'nbs' / d).glob('*.ipynb')
                 if any('parameters' in c.get('metadata', {}).get('tags', []) for c in json.loads(p.read_text())['cells']))

@pytest.mark.parametrize('path', REPORTS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_report_notebook_trains_only_under_its_out_dir(path):
    """A report notebook writes under `out_dir` (what `jepa-lab run --out` injects): no other parameter defaults to a run folder, and no
    `train(...)` is skipped because a checkpoint exists (that reuses a run trained with other parameters; `train` is a no-op when done)."""
    import re
    from jepa_lab.cli import notebook_parameters
    params = notebook_parameters(path)
    assert 'out_dir' in params
    assert not [k for k, v in params.items() if k != 'out_dir' and isinstance(v, str) and 'runs/' in v], params
    code = '\n'.join(c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
                     for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code')
    assert not re.search(r'if not .*\.exists\(\)\s*:\s*(\n\s*)?train\(', code)

@pytest.mark.parametrize('path', REPORTS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_every_parameter_has_a_literal_default_that_types_its_values(path):
    "Each assignment of the parameters cell reaches `jepa-lab run` as a value (papermill skips a line with two '=', e.g. a label 'n = 8')."
    import ast
    from jepa_lab.cli import notebook_parameters
    cell = next(c for c in json.loads(path.read_text())['cells'] if 'parameters' in c.get('metadata', {}).get('tags', []))
    src = cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])
    assigned = {t.id: ast.literal_eval(n.value) for n in ast.parse(src).body if isinstance(n, ast.Assign) for t in n.targets}
    assert notebook_parameters(path) == assigned
