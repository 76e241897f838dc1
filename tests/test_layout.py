"""The house's shape, enforced: layers import only downward, no module grows past ~300 lines, every package re-exports its modules."""
import ast, importlib
from pathlib import Path
import pytest
from conftest import ROOT

LAYERS = ['core', 'files', 'runs', 'data', 'views', 'models', 'losses', 'methods', 'train', 'eval', 'probes', 'viz', 'report', 'catalog', 'launch', 'cluster', 'cli']   # data flows left to right
LIB = ROOT / 'jepa_lab'
MODULES = sorted(p for p in LIB.rglob('*.py') if p.name != '_modidx.py')

def layer(path: Path) -> str:
    rel = path.relative_to(LIB).with_suffix('').parts
    return rel[0] if rel[0] != '__init__' else 'package'

def imported_layers(path: Path) -> set[str]:
    "The jepa_lab layers a module imports at module level or inside functions (relative imports resolved)."
    pkg = path.relative_to(LIB).with_suffix('').parts[:-1] if path.name != '__init__.py' else path.relative_to(LIB).parts[:-1]
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            if n.level: parts = list(pkg[:len(pkg) - (n.level - 1)] if n.level > 1 else pkg) + (n.module.split('.') if n.module else [a.name for a in n.names][:1])
            elif n.module and n.module.startswith('jepa_lab.'): parts = n.module.split('.')[1:]
            else: continue
            if parts: out.add(parts[0])
        elif isinstance(n, ast.Import):
            out |= {a.name.split('.')[1] for a in n.names if a.name.startswith('jepa_lab.')}
    return out

@pytest.mark.parametrize('path', MODULES, ids=lambda p: str(p.relative_to(LIB)))
def test_imports_go_down_the_layers(path):
    me = layer(path)
    if me == 'package': return                                  # jepa_lab/__init__.py gathers the top-level names
    bad = {l for l in imported_layers(path) if l in LAYERS and LAYERS.index(l) > LAYERS.index(me)}
    assert not bad, f"{path.relative_to(LIB)} ({me}) imports the higher layer(s) {sorted(bad)}"

def test_no_module_over_300_lines():
    long = {str(p.relative_to(LIB)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long

def test_packages_reexport_their_modules():
    for pkg in ('data', 'views', 'models', 'losses', 'methods', 'train', 'eval', 'probes', 'viz'):
        m = importlib.import_module(f'jepa_lab.{pkg}')
        subs = [p.stem for p in (LIB / pkg).glob('*.py') if p.stem != '__init__']
        names = {n for s in subs for n in importlib.import_module(f'jepa_lab.{pkg}.{s}').__all__}
        assert names == set(m.__all__) and all(hasattr(m, n) for n in names), pkg
