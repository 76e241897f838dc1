"""Sphinx configuration of the docs site: the notebooks of nbs/ (shown as written, not executed) and the API of every module.

The source is laid out in docs/_build/src by docs/prepare.py; build with tools/build_docs.sh (offline).
"""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import jepa_lab

project = 'jepa_lab'
author = 'jepa_lab developers'
copyright = author
version = release = jepa_lab.__version__

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.mathjax']
nb_execution_mode = 'off'                    # the library notebooks carry no outputs; the site shows prose, code and tests
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3

autodoc_member_order = 'bysource'            # the notebook's order
autodoc_typehints = 'signature'
add_module_names = False
python_use_unqualified_type_names = True

# Names from other packages cannot be resolved offline (no intersphinx inventories here), so -n checks jepa_lab's own
# references only: a jepa_lab name, qualified or not, that does not resolve still fails the build.
nitpick_ignore_regex = [
    (r'py:.*', r'(?!jepa_lab\.)\w+\..*'),         # torch.Tensor, pathlib.Path, numpy.ndarray, typing.Literal[...]
    (r'py:.*', r'\w+\[.*'),                       # the pieces Sphinx splits a subscripted annotation into: dict[str, tuple[float
    (r'py:.*', r'Tensor|callable'),                # torch's Tensor and the builtin as string annotations name them
    (r'py:.*', r'jepa_lab\.(\w+\.)*_\w+'),         # a private base class (_CenterNetProbe) is named in "Bases:", by design without a page
]
# Notebooks are read as their authors wrote them: a heading that skips a level (# then ###) is theirs to choose.
# An interactive output (plotly's JSON) has no static renderer; the page shows the HTML, image or text that comes with it.
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type']

html_theme = 'furo'
html_title = f'jepa_lab {release}'
html_extra_path = ['_build/md']              # <page>.html.md beside <page>.html: what the modules' `Docs:` links name
html_show_sourcelink = False

# Formulas render offline: MathJax 2 from the jupyter-server-mathjax wheel (a dev dependency), which docs/prepare.py copies
# into _build/static/mathjax; Sphinx would otherwise load MathJax 3 from a CDN.
if (ROOT / 'docs' / '_build' / 'static' / 'mathjax' / 'MathJax.js').is_file():
    html_static_path = ['_build/static']
    mathjax_path = 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full'   # the config the wheel ships
    mathjax2_config = {'tex2jax': {'inlineMath': [['\\(', '\\)']], 'displayMath': [['\\[', '\\]']], 'processEscapes': True,
                                   'processClass': 'math|output_area', 'ignoreClass': 'document'}}

_code_span = re.compile(r'(`+)(.+?)\1', re.S)

def _md_to_rst(text: str) -> str:
    "nbdev docstrings are Markdown: `code` becomes an rST literal, and *, |, _ and \\ elsewhere are taken literally."
    out, pos = [], 0
    for m in _code_span.finditer(text):
        glue_before = '\\ ' if m.start() and text[m.start() - 1].isalnum() else ''      # rST needs a break around a literal:
        glue_after = '\\ ' if text[m.end():m.end() + 1].isalnum() else ''              # `Block`s → ``Block``\ s
        out += [re.sub(r'([\\*|_])', r'\\\1', text[pos:m.start()]), f'{glue_before}``{m.group(2).strip()}``{glue_after}']
        pos = m.end()
    return ''.join(out + [re.sub(r'([\\*|_])', r'\\\1', text[pos:])])

def _docstring(app, what, name, obj, options, lines):
    """Markdown docstrings read as such; a module's `Docs:` line goes (the API page links the notebook page itself), and so
    does the docstring a data member only inherits from its type (tuple's, dict's, `Registry`'s)."""
    if what == 'module': lines[:] = [l for l in lines if not l.startswith('Docs: ')]
    words = lambda doc: ' '.join(doc.split()) if isinstance(doc, str) else None
    if what == 'data' and words('\n'.join(lines)) in (words(getattr(obj, '__doc__', None)), words(type(obj).__doc__)): lines[:] = []
    lines[:] = _md_to_rst('\n'.join(lines)).split('\n')

def _type_alias(app, env, node, contnode):
    "An annotation names a type alias (`HeadMode = Literal[...]`) as a class; autodoc documents it as data: link that."
    if node.get('refdomain') != 'py' or node.get('reftype') != 'class': return None
    from sphinx.util.nodes import make_refnode
    objects, target, mod = env.get_domain('py').objects, node['reftarget'], node.get('py:module')
    for name in ([f'{mod}.{target}'] if mod else []) + [target]:
        if (obj := objects.get(name)) is not None and obj.objtype == 'data':
            return make_refnode(app.builder, node['refdoc'], obj.docname, obj.node_id, contnode, name)
    return None

def setup(app):
    app.connect('autodoc-process-docstring', _docstring)
    app.connect('missing-reference', _type_alias)
