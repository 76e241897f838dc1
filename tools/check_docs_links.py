"""Check a built HTML site offline: every relative href/src resolves to a file in it, every #anchor to an id in its page,
and every module's `Docs:` link (nbdev writes it from [project.urls] Documentation) to a file the site built.

    python tools/check_docs_links.py [docs/_build/html]

Links with a scheme (https:, mailto:, data:) are not followed: there is no network here; a script loaded from the network
(a CDN's MathJax) is an error, as the site must work offline. Exits 1 on anything broken.
"""
import ast, re, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LINK_ATTRS = {'href', 'src'}

class Page(HTMLParser):
    "The ids and the links (href/src) of one HTML page."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.scripts = set(), [], set()
    def handle_starttag(self, tag, attrs):
        if tag == 'script': self.scripts |= {v for k, v in attrs if k == 'src' and v}
        for k, v in attrs:
            if k == 'id' or (tag == 'a' and k == 'name'): self.ids.add(v)
            if k in LINK_ATTRS and v is not None: self.links.append(v)

def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding='utf-8', errors='replace'))
    return page

def broken_links(site: Path) -> tuple[int, list[str]]:
    "(links checked, 'page: link (why)' for each that does not resolve inside `site`)."
    pages, n, bad = {}, 0, []
    def page(p: Path) -> Page:
        if p not in pages: pages[p] = parse(p)
        return pages[p]
    for html in sorted(site.rglob('*.html')):
        for link in page(html).links:
            u = urlsplit(link)
            if u.scheme in ('http', 'https') or link.startswith('//'):
                if link in page(html).scripts: bad.append(f'{html.relative_to(site)}: {link} (a script from the network: the site must work offline)')
                continue
            if u.scheme: continue
            n += 1
            target = html if not u.path else (html.parent / unquote(u.path)).resolve()
            if u.path.endswith('/') or target.is_dir(): target = target / 'index.html'
            where = f'{html.relative_to(site)}: {link}'
            if not target.is_relative_to(site.resolve()) and not target.is_relative_to(site): bad.append(f'{where} (outside the site)')
            elif not target.is_file(): bad.append(f'{where} (no such file)')
            elif u.fragment and target.suffix == '.html' and unquote(u.fragment) not in page(target).ids:
                bad.append(f'{where} (no id {u.fragment!r} in {target.name})')
    return n, bad

def docs_links(site: Path) -> tuple[int, list[str]]:
    "(modules with a `Docs:` link, 'module: url (why)' for each that names no file of `site`)."
    from nbdev.config import get_config
    cfg = get_config(ROOT)                                    # nbdev's own reading: doc_host + doc_baseurl from Documentation
    base = f"{cfg.doc_host.rstrip('/')}{cfg.doc_baseurl.rstrip('/')}/" if cfg.doc_host else ''
    n, bad = 0, []
    for py in sorted((ROOT / 'jepa_lab').rglob('*.py')):
        doc = ast.get_docstring(ast.parse(py.read_text(encoding='utf-8'))) or ''
        for url in re.findall(r'^Docs: (\S+)', doc, re.M):
            n += 1
            where = f'{py.relative_to(ROOT)}: {url}'
            if not base or not url.startswith(base): bad.append(f'{where} (not under the Documentation URL {base!r})')
            elif not (site / url[len(base):].lstrip('/')).is_file(): bad.append(f'{where} (the site has no {url[len(base):]})')
    return n, bad

def main(site='docs/_build/html') -> int:
    site = Path(site)
    if not (site / 'index.html').is_file(): sys.exit(f'{site} has no index.html: build the site first (tools/build_docs.sh)')
    n_links, bad_links = broken_links(site)
    n_docs, bad_docs = docs_links(site)
    for b in bad_links + bad_docs: print('broken:', b)
    n_pages = sum(1 for _ in site.rglob('*.html'))
    print(f'{n_pages} pages, {n_links} internal links and anchors: {len(bad_links)} broken; '
          f'{n_docs} module Docs: links: {len(bad_docs)} naming no file of the site')
    return 1 if bad_links or bad_docs else 0

if __name__ == '__main__': sys.exit(main(*sys.argv[1:]))
