"""Give every notebook cell a stable id (nbformat 4.5): nbdev writes it into jepa_lab/ (`# %% ... #id`), so a cell without one gets a
new random id at each export and `.ci/run`'s export check fails. `--check` exits 1 if any cell lacks an id."""
import json, sys, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def missing_ids(fix: bool) -> list[str]:
    bad = []
    for p in sorted((ROOT / 'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in p.parts: continue
        nb = json.loads(p.read_text())
        cells = [c for c in nb['cells'] if 'id' not in c]
        if not cells: continue
        bad.append(str(p.relative_to(ROOT)))
        if fix:
            for c in cells: c['id'] = uuid.uuid4().hex[:8]
            nb['nbformat'], nb['nbformat_minor'] = 4, max(nb.get('nbformat_minor', 5), 5)
            p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return bad

if __name__ == '__main__':
    bad = missing_ids(fix='--check' not in sys.argv)
    if '--check' in sys.argv and bad: sys.exit(f"cells without an id in: {', '.join(bad)}; run python tools/cell_ids.py")
