"""One build step beside pyproject.toml: the wheel carries the notebooks that `jepa-lab run` takes by name.

nbs/ stays their only source. Building a wheel (`pip install .`, `pip wheel .`, `python -m build`) copies nbs/experiments/*.ipynb
and the runnable nbs/viz/*.ipynb (not the library notebooks, those with `#| default_exp`) into jepa_lab/notebooks/. An editable
install copies nothing: it reads nbs/ itself (`jepa_lab.cli.notebooks_dir`)."""
import json, re, shutil
from pathlib import Path
from setuptools import setup
from setuptools.command.build_py import build_py

NBS = Path(__file__).resolve().parent / 'nbs'

def is_library(nb: Path) -> bool:
    "An nbdev notebook that exports a module (the same rule as jepa_lab.cli, which cannot be imported while building)."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    return any(c['cell_type'] == 'code' and re.search(r'^\s*#\s*\|\s*default_exp\b', ''.join(c['source']), re.M) for c in cells)

class build_py_with_notebooks(build_py):
    def run(self):
        super().run()
        if self.editable_mode: return
        dest = Path(self.build_lib) / 'jepa_lab' / 'notebooks'
        shutil.rmtree(dest, ignore_errors=True)                   # a notebook removed from nbs/ leaves the wheel too
        sources = [nb for folder in ('experiments', 'viz') for nb in sorted((NBS / folder).glob('*.ipynb')) if not is_library(nb)]
        if not sources: raise SystemExit(f"no notebooks in {NBS}/experiments: a wheel of jepa_lab without them cannot run `jepa-lab quickstart`")
        for nb in sources:
            (dest / nb.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb, dest / nb.parent.name / nb.name)

setup(cmdclass={'build_py': build_py_with_notebooks})
