"""Lay out the Sphinx source of the docs site in docs/_build/src (never in git), from nbs/ and the package.

- every notebook under nbs/ becomes a page at nbdev's own path (`nbpath2html`: nbs/methods/07_m3_jepa.ipynb →
  methods/m3_jepa.html), so the `Docs:` link nbdev writes into each module docstring names a page this site builds;
  the notebooks are copied, not executed, with a closing cell that links the module's API page;
- a folder's index.ipynb is its section page and gets a toctree of the folder's notebooks (library notebooks first,
  then the runnable ones); a folder without one (experiments/) gets a generated page;
- api/<module>.rst: an autodoc page for every public module of jepa_lab found by `pkgutil.walk_packages`, documenting
  the names the module itself defines (a package's re-exports are documented where they are defined);
- docs/_build/md/<page>.html.md: each notebook as Markdown, the `.html.md` file the `Docs:` links name (as nbdev's
  own sites serve them), copied into the site by `html_extra_path`.

Run by tools/build_docs.sh before sphinx-build.
"""
import ast, functools, importlib, json, pkgutil, re, shutil
from pathlib import Path
from nbdev.config import nbpath2html

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
BUILD = ROOT / 'docs' / '_build'
SRC, MD = BUILD / 'src', BUILD / 'md'
ORDER = ['package', 'core', 'files', 'runs', 'data', 'views', 'models', 'losses', 'methods', 'train', 'eval', 'probes',
         'viz', 'report', 'catalog', 'launch', 'cluster', 'cli', 'experiments']   # the package's layers in the direction data flows; others follow
LANGUAGE = {'name': 'python', 'pygments_lexer': 'ipython3'}

def src_text(cell) -> str:
    "A cell's source as one string (nbformat allows a list of lines or a string)."
    s = cell['source']
    return s if isinstance(s, str) else ''.join(s)

def default_exp(nb: dict) -> str | None:
    "The module a library notebook exports (`#| default_exp`), or None for a runnable notebook."
    for c in nb['cells']:
        if c['cell_type'] == 'code' and (m := re.search(r'^\s*#\s*\|\s*default_exp\s+(\S+)', src_text(c), re.M)):
            return m.group(1)
    return None

def is_library(nb_path: Path) -> bool:
    return default_exp(json.loads(nb_path.read_text(encoding='utf-8'))) is not None

def module_name(exp: str) -> str:
    "`methods.__init__` → `jepa_lab.methods`, `core` → `jepa_lab.core`."
    return '.'.join(['jepa_lab'] + [p for p in exp.split('.') if p != '__init__'])

def notebooks(folder: Path = NBS, recursive=True) -> list[Path]:
    "The notebooks under `folder`, leaving out hidden and private folders (.ipynb_checkpoints)."
    found = folder.rglob('*.ipynb') if recursive else folder.glob('*.ipynb')
    return sorted(p for p in found if not any(q.startswith(('.', '_')) for q in p.relative_to(NBS).parts))

@functools.cache
def pages() -> dict[Path, str]:
    """Each notebook's page, by nbdev's rule (nbs/methods/07_m3_jepa.ipynb → methods/m3_jepa), which its module's `Docs:`
    link names. A runnable notebook whose page a library notebook already takes (viz/explore.ipynb beside
    viz/04_explore.ipynb) becomes `<page>-notebook`; two library notebooks on one page are an error."""
    out, owner = {}, {}
    for nb in sorted(notebooks(), key=lambda p: not is_library(p)):          # library notebooks choose first
        page = nbpath2html(nb.relative_to(NBS)).with_suffix('').as_posix()
        if page in owner and not is_library(nb): page += '-notebook'
        if page in owner: raise SystemExit(f'{nb.relative_to(ROOT)} and {owner[page].relative_to(ROOT)} would both be {page}.html: rename one')
        out[nb], owner[page] = page, nb
    return out

def docname(nb: Path) -> str:
    "The page a notebook becomes (see `pages`)."
    return pages()[nb]

def without_directives(nb: dict) -> dict:
    "The notebook as nbdev's own pages show it: `#| export`-style directive lines dropped, and cells left empty by that."
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['source'] = re.sub(r'^\s*#\s*\|.*(\n|$)', '', src_text(c), flags=re.M)
    nb['cells'] = [c for c in nb['cells'] if c['cell_type'] != 'code' or src_text(c).strip()]
    return nb

def md_cell(text: str, i: int) -> dict:
    return {'cell_type': 'markdown', 'id': f'docs-{i}', 'metadata': {}, 'source': text}

def toctree(entries, caption=None, hidden=False, maxdepth=1) -> str:
    opts = [f':maxdepth: {maxdepth}'] + ([f':caption: {caption}'] if caption else []) + ([':hidden:'] if hidden else [])
    return '\n'.join(['```{toctree}', *opts, '', *entries, '```'])

def markdown(nb: dict) -> str:
    "A notebook as Markdown: its prose, and its code fenced (raw cells, nbdev's front matter, are not shown, as on its page)."
    parts = [src_text(c).strip() if c['cell_type'] == 'markdown' else f"```python\n{src_text(c).strip()}\n```"
             for c in nb['cells'] if c['cell_type'] in ('markdown', 'code') and src_text(c).strip()]
    return '\n\n'.join(parts) + '\n'

def copy_assets(nb: dict, nb_path: Path, page: str):
    "Relative images in the prose, found beside the notebook or, as README-style paths, at the repository root."
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        for ref in re.findall(r'!\[[^\]]*\]\(([^)\s]+)', src_text(c)) + re.findall(r'<img[^>]*\ssrc="([^"]+)"', src_text(c)):
            if re.match(r'[a-z]+:', ref) or ref.startswith('/'): continue
            found = next((p for p in (nb_path.parent / ref, ROOT / ref) if p.is_file()), None)
            if found:
                dest = SRC / Path(page).parent / ref
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, dest)

def write_page(nb_path: Path, extra_cells=()) -> str:
    "Copy one notebook to its page (plus `extra_cells`), write its .html.md, and return the page name."
    nb, page = json.loads(nb_path.read_text(encoding='utf-8')), docname(nb_path)
    exp, nb = default_exp(nb), without_directives(nb)
    (MD / f'{page}.html.md').parent.mkdir(parents=True, exist_ok=True)
    (MD / f'{page}.html.md').write_text(markdown(nb), encoding='utf-8')
    copy_assets(nb, nb_path, page)
    if exp: extra_cells = [f"API reference: {{py:mod}}`{module_name(exp)}`", *extra_cells]
    nb['cells'] += [md_cell(t, i) for i, t in enumerate(extra_cells)]
    nb['metadata'].setdefault('language_info', LANGUAGE)
    dest = SRC / f'{page}.ipynb'
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    return page

def rank(name: str) -> tuple:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)

def write_folder(folder: Path) -> str:
    "A section: the folder's notebooks (library ones, then runnable ones) under its index page; returns the index page."
    nbs = [p for p in notebooks(folder, recursive=False) if p.name != 'index.ipynb']
    lib, runnable = [p for p in nbs if is_library(p)], [p for p in nbs if not is_library(p)]
    trees = ([toctree([docname(p).split('/')[-1] for p in lib], 'Modules')] if lib else []) + \
            ([toctree([docname(p).split('/')[-1] for p in runnable], 'Notebooks')] if runnable else [])
    for p in nbs: write_page(p)
    if (folder / 'index.ipynb').is_file(): return write_page(folder / 'index.ipynb', trees)
    rel = folder.relative_to(NBS).as_posix()
    intro = ("Runnable notebooks: `jepa-lab run NAME` executes one with papermill into a run folder. "
             "They are shown here as written, not executed.") if runnable and not lib else ''
    (SRC / rel).mkdir(parents=True, exist_ok=True)
    (SRC / rel / 'index.md').write_text('\n\n'.join([f'# {rel}', intro, *trees]) + '\n', encoding='utf-8')
    return f'{rel}/index'

def public_modules() -> list[str]:
    "Every module of jepa_lab whose dotted name has no private part, in walk order (a package before its modules)."
    pkg = importlib.import_module('jepa_lab')
    names = ['jepa_lab'] + [m.name for m in pkgutil.walk_packages(pkg.__path__, 'jepa_lab.')]
    return [n for n in names if not any(p.startswith('_') for p in n.split('.'))]

def defined_names(mod) -> dict[str, str]:
    "The public names `mod` defines itself (in `__all__` if it has one) → 'class', 'function' or 'data', in source order; re-exports are left out."
    tree = ast.parse(Path(mod.__file__).read_text(encoding='utf-8'))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef): found.setdefault(node.name, 'class')
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): found.setdefault(node.name, 'function')
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                for n in ast.walk(t):
                    if isinstance(n, ast.Name): found.setdefault(n.id, 'data')
    public = getattr(mod, '__all__', None)
    return {n: k for n, k in found.items() if (n in public if public is not None else not n.startswith('_'))}

def autodoc(module: str, name: str, kind: str) -> list[str]:
    "One member's directive. Each is named, not left to automodule, which skips module-level data that has no `#:` comment."
    opts = ['   :members:', '   :undoc-members:', '   :show-inheritance:'] if kind == 'class' else []
    return ['', f'.. auto{kind}:: {module}.{name}', *opts]

def write_api(module_nbs: dict[str, Path]) -> str:
    "One autodoc page per public module; each package's page lists its modules in the notebooks' order. Returns the API index page."
    mods = public_modules()
    def order(m):
        nb = module_nbs.get(m)
        return (0, rank(nb.relative_to(NBS).parts[0].removesuffix('.ipynb')), nb.as_posix()) if nb else (1, 0, m)
    (SRC / 'api').mkdir(parents=True, exist_ok=True)
    for name in mods:
        mod = importlib.import_module(name)
        children = sorted((m for m in mods if m.rsplit('.', 1)[0] == name and m != name), key=order)
        lines = [f'``{name}``', '=' * (len(name) + 4), '', f'.. automodule:: {name}']
        for member, kind in defined_names(mod).items(): lines += autodoc(name, member, kind)
        if name in module_nbs: lines += ['', f'Notebook: :doc:`/{docname(module_nbs[name])}`']
        if children: lines += ['', '.. toctree::', '   :maxdepth: 1', '   :caption: Modules', '', *[f'   {c}' for c in children]]
        (SRC / 'api' / f'{name}.rst').write_text('\n'.join(lines) + '\n', encoding='utf-8')
    (SRC / 'api' / 'index.md').write_text('# API reference\n\nEvery module of `jepa_lab`, generated from its docstrings.\n\n'
                                          + toctree(['jepa_lab'], maxdepth=3) + '\n', encoding='utf-8')
    return 'api/index'

def copy_mathjax():
    "MathJax 2 from the jupyter-server-mathjax wheel into _build/static/mathjax, so formulas render with no network (docs/conf.py)."
    try: import jupyter_server_mathjax
    except ImportError: raise SystemExit("the docs need jupyter-server-mathjax (MathJax offline): pip install -e '.[dev]'") from None
    dest = BUILD / 'static' / 'mathjax'
    if not (dest / 'MathJax.js').is_file():
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / 'static', dest, dirs_exist_ok=True)

def main():
    shutil.rmtree(SRC, ignore_errors=True); shutil.rmtree(MD, ignore_errors=True)
    copy_mathjax()
    SRC.mkdir(parents=True); MD.mkdir(parents=True)
    sections = sorted([p for p in NBS.iterdir() if not p.name.startswith(('.', '_')) and
                       ((p.is_dir() and notebooks(p, recursive=False)) or (p.suffix == '.ipynb' and p.name != 'index.ipynb'))],
                      key=lambda p: rank(p.stem))
    library, runnable = [], []
    for p in sections:
        if p.is_dir(): (library if any(map(is_library, notebooks(p, recursive=False))) else runnable).append(write_folder(p))
        else: (library if is_library(p) else runnable).append(write_page(p))
    module_nbs = {}
    for p in notebooks():
        if exp := default_exp(json.loads(p.read_text(encoding='utf-8'))): module_nbs[module_name(exp)] = p
    api = write_api(module_nbs)
    trees = [toctree(library, 'Library', hidden=True)] + ([toctree(runnable, 'Experiments', hidden=True)] if runnable else []) \
            + [toctree([api], 'Reference', hidden=True)]
    write_page(NBS / 'index.ipynb', trees)
    if missing := [str(nb.relative_to(ROOT)) for nb, page in pages().items() if not (SRC / f'{page}.ipynb').is_file()]:
        raise SystemExit(f'no place in the site for {missing}: only nbs/ and its folders one level down are laid out')
    for nb, page in pages().items():
        if page != nbpath2html(nb.relative_to(NBS)).with_suffix('').as_posix():
            print(f'note: {nb.relative_to(ROOT)} is {page}.html (its nbdev name belongs to a library notebook)')
    print(f'docs source: {sum(1 for _ in SRC.rglob("*.ipynb"))} notebooks, {sum(1 for _ in (SRC / "api").glob("*.rst"))} API pages in {SRC.relative_to(ROOT)}')

if __name__ == '__main__': main()
