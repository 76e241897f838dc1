"""The docs site's pieces, without building it (tools/build_docs.sh builds it in CI): the modules' Docs: links name pages
the site lays out, Markdown docstrings read as clean reStructuredText, and the link checker finds what is broken."""
import ast, importlib.util, re
import pytest
from conftest import ROOT

docutils = pytest.importorskip('docutils.core')

def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

prepare, check = load(ROOT / 'docs' / 'prepare.py'), load(ROOT / 'tools' / 'check_docs_links.py')

def test_every_docs_link_names_a_page_the_site_lays_out():
    pages = {page + '.html.md' for page in prepare.pages().values()}
    links = [u for p in (ROOT / 'jepa_lab').rglob('*.py')
             for u in re.findall(r'^Docs: \S+?/jepa_lab/(\S+)$', ast.get_docstring(ast.parse(p.read_text())) or '', re.M)]
    assert len(links) >= 60 and not set(links) - pages, sorted(set(links) - pages)

def test_each_notebook_has_its_own_page_and_library_notebooks_keep_nbdevs_name():
    from nbdev.config import nbpath2html
    pages = prepare.pages()
    assert len(set(pages.values())) == len(pages) == len(prepare.notebooks())
    for nb, page in pages.items():
        if prepare.is_library(nb): assert page == nbpath2html(nb.relative_to(prepare.NBS)).with_suffix('').as_posix()

def test_api_pages_document_what_a_module_defines_not_its_reexports():
    import jepa_lab.methods, jepa_lab.methods.lejepa, jepa_lab.methods.dmt_jepa
    assert prepare.defined_names(jepa_lab.methods) == {}                       # a package re-exports; its modules document
    assert list(prepare.defined_names(jepa_lab.methods.lejepa)) == jepa_lab.methods.lejepa.__all__
    assert prepare.defined_names(jepa_lab.methods.dmt_jepa)['HeadMode'] == 'data'   # a type alias, documented by autodata
    assert 'jepa_lab.methods.lejepa' in prepare.public_modules() and 'jepa_lab._modidx' not in prepare.public_modules()

@pytest.mark.parametrize('doc', ['Mean |pred - target| (B, K) over `mask` (B, h, w).',
                                 'Rows for `methods` = {name: dict(method=..., **config overrides)}.',
                                 'blocks on timm `Block`s, a_b and x_ and `*args`'])
def test_markdown_docstrings_read_as_rst_without_warnings(doc):
    conf = load(ROOT / 'docs' / 'conf.py')
    from docutils.writers.html4css1 import Writer
    out = docutils.publish_string(conf._md_to_rst(doc), writer=Writer(), settings_overrides={'report_level': 1, 'halt_level': 1})
    assert b'``' not in out and b'<tt class="docutils literal">' in out

def test_link_checker_reports_a_missing_page_and_a_missing_anchor(tmp_path):
    (tmp_path / 'index.html').write_text('<a href="a.html#x">a</a><a href="b.html">b</a><a href="https://x.org/c">c</a>'
                                         '<img src="_images/p.png"><a href="#top" id="top">top</a>')
    (tmp_path / 'a.html').write_text('<h1 id="y">a</h1>')
    (tmp_path / '_images').mkdir(); (tmp_path / '_images' / 'p.png').write_bytes(b'')
    n, bad = check.broken_links(tmp_path)
    assert n == 4 and bad == ["index.html: a.html#x (no id 'x' in a.html)", 'index.html: b.html (no such file)']

def test_link_checker_refuses_a_script_from_the_network(tmp_path):
    (tmp_path / 'index.html').write_text('<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>'
                                         '<a href="https://example.org">a link out is fine</a><script src="local.js"></script>')
    (tmp_path / 'local.js').write_text('')
    n, bad = check.broken_links(tmp_path)
    assert n == 1 and bad == ['index.html: https://cdn.example.org/mathjax/tex-chtml.js (a script from the network: the site must work offline)']
