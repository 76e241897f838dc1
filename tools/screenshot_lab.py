"""Open a notebook in JupyterLab in headless Chromium, run its cells and save a screenshot: to see the explorers' widgets rendered.

    python tools/screenshot_lab.py [NOTEBOOK] [--out PNG] [--params '{"steps": 20}'] [--wait 90]

A developer's check, not a test (CI has no browser). It copies NOTEBOOK (default nbs/viz/explore.ipynb) into a temporary folder with
its parameters replaced, starts `jupyter lab` there and Debian's `chromium` with the DevTools protocol, opens the notebook, presses
Shift+Enter once per cell (JupyterLab runs the cell and moves on), waits, and captures the page. Needs `chromium` (apt) and
websocket-client; nothing is downloaded."""
import argparse, base64, json, os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def wait_http(url: str, timeout: float = 60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try: return urllib.request.urlopen(url, timeout=2).read()
        except OSError: time.sleep(0.5)
    raise TimeoutError(f"nothing answered at {url} within {timeout} s")

class Page:
    "The smallest DevTools-protocol client: send a method, wait for its answer."
    def __init__(self, ws_url: str):
        import websocket
        self.ws, self.id = websocket.create_connection(ws_url, timeout=120), 0
    def __call__(self, method: str, **params):
        self.id += 1
        self.ws.send(json.dumps(dict(id=self.id, method=method, params=params)))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == self.id:
                if 'error' in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get('result', {})
    def key(self, key: str, code: str, vk: int, modifiers: int = 0):
        for kind in ('rawKeyDown', 'keyUp'):
            self('Input.dispatchKeyEvent', type=kind, key=key, code=code, windowsVirtualKeyCode=vk, modifiers=modifiers)

def with_params(src: Path, dest: Path, params: dict):
    "Copy the notebook, its parameters cell followed by an assignment of `params` (as jepa-lab run injects them)."
    nb = json.loads(src.read_text())
    i = next(i for i, c in enumerate(nb['cells']) if 'parameters' in c.get('metadata', {}).get('tags', []))
    nb['cells'].insert(i + 1, dict(cell_type='code', id=secrets.token_hex(4), metadata={}, execution_count=None, outputs=[],
                                   source=''.join(f'{k} = {v!r}\n' for k, v in params.items())))
    dest.write_text(json.dumps(nb, indent=1))
    return len([c for c in nb['cells'] if c['cell_type'] in ('code', 'markdown', 'raw')])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('notebook', nargs='?', default=str(ROOT / 'nbs' / 'viz' / 'explore.ipynb'))
    ap.add_argument('--out', default='explore_lab.png')
    ap.add_argument('--params', default='{"steps": 60, "keep_every": 20, "n_points": 150}', help='JSON of parameters to set')
    ap.add_argument('--wait', type=float, default=90, help='seconds to let the cells run')
    ap.add_argument('--size', default='1500,2400', help='window width,height')
    a = ap.parse_args()
    if not shutil.which('chromium'): sys.exit("needs Debian's chromium: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix='lab_'))
    nb = work / Path(a.notebook).name
    n_cells = with_params(Path(a.notebook), nb, {'out_dir': str(work / 'out'), **json.loads(a.params)})
    port, token, cdp = free_port(), secrets.token_hex(16), free_port()
    env = {**os.environ, 'JUPYTER_NOTEBOOKS_DIR': str(ROOT / 'nbs')}
    lab = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', f'--port={port}', f'--IdentityProvider.token={token}',
                            f'--ServerApp.root_dir={work}', '--ServerApp.open_browser=False', '--allow-root'], cwd=work, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chrome = subprocess.Popen(['chromium', '--headless=new', '--no-sandbox', '--disable-gpu', f'--remote-debugging-port={cdp}', '--remote-allow-origins=*',
                               f'--window-size={a.size}', f'--user-data-dir={work / "chrome"}', 'about:blank'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f'http://127.0.0.1:{port}/api?token={token}')
        target = next(t for t in json.loads(wait_http(f'http://127.0.0.1:{cdp}/json')) if t['type'] == 'page')
        page = Page(target['webSocketDebuggerUrl'])
        page('Page.enable'); page('Runtime.enable')
        page('Page.navigate', url=f'http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}&reset')
        time.sleep(20)                                                   # JupyterLab loads, the kernel starts
        w, h = map(int, a.size.split(','))
        page('Input.dispatchMouseEvent', type='mousePressed', x=w // 2, y=160, button='left', clickCount=1)
        page('Input.dispatchMouseEvent', type='mouseReleased', x=w // 2, y=160, button='left', clickCount=1)
        page.key('Escape', 'Escape', 27)                                 # command mode
        page.key('ArrowUp', 'ArrowUp', 38); page.key('ArrowUp', 'ArrowUp', 38)
        for _ in range(n_cells):                                         # Shift+Enter: run this cell, go to the next
            page.key('Enter', 'Enter', 13, modifiers=8); time.sleep(1.0)
        time.sleep(a.wait)
        shot = page('Page.captureScreenshot', format='png')
        Path(a.out).write_bytes(base64.b64decode(shot['data']))
        print(f"screenshot: {Path(a.out).resolve()} (notebook and run in {work})")
    finally:
        chrome.terminate(); lab.terminate()
        for p in (chrome, lab):
            try: p.wait(10)
            except subprocess.TimeoutExpired: p.kill()

if __name__ == '__main__': main()
