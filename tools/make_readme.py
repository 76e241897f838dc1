"""Write README.md from nbs/index.ipynb (markdown cells only; Quarto is not needed). `--check` exits 1 if README.md is stale."""
import sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parent.parent

def readme_text() -> str:
    nb = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    cells = [c.source.strip() for c in nb.cells if c.cell_type == 'markdown' and c.source.strip()]
    body = '\n\n'.join(cells)
    return body.replace('\n> ', '\n', 1) + '\n' if body.startswith('# ') else body + '\n'

if __name__ == '__main__':
    text, path = readme_text(), ROOT / 'README.md'
    if '--check' in sys.argv:
        if not path.exists() or path.read_text() != text: sys.exit('README.md is stale: run python tools/make_readme.py')
    else: path.write_text(text)
