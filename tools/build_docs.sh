#!/usr/bin/env bash
# The docs site, offline: docs/prepare.py lays out the source from nbs/ and jepa_lab in docs/_build/src, Sphinx builds it
# into docs/_build/html (any warning fails; -n checks jepa_lab's own cross-references), and tools/check_docs_links.py checks
# every internal link and anchor, and that every module's Docs: link names a file of the site.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"     # importing jepa_lab (torch) for autodoc
start=$SECONDS
python docs/prepare.py
rm -rf docs/_build/html                              # a page whose notebook went must not linger
python -m sphinx -b html -n -W --keep-going -q -j auto -c docs docs/_build/src docs/_build/html
python tools/check_docs_links.py docs/_build/html
echo "docs site: docs/_build/html/index.html ($((SECONDS - start)) s)"
