"""`jepa-lab run` as a hostile user and a busy cluster would try it: typed, escaped parameters; one process per --out; a run
folder that a rerun, another parameter set or a failing cell never damages (issue 13, classes 2, 3, 7 and 8)."""
import contextlib, hashlib, io, json, subprocess, sys, time, types
from pathlib import Path
import nbformat
import pytest
from conftest import ROOT
from jepa_lab.cli import main

def jepa_lab(*args):
    "`jepa-lab ARGS` in this process (the notebooks still run in their own kernels): returncode, stdout, stderr."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())

def notebook(path: Path, params: str, body: str) -> Path:
    kernel = {'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}
    cells = [nbformat.v4.new_code_cell(params, metadata={'tags': ['parameters']}), nbformat.v4.new_code_cell(body)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), path)
    return path

ECHO = """import json, pathlib
pathlib.Path(out_dir, 'seen.json').write_text(json.dumps({k: [repr(v), type(v).__name__] for k, v in dict(t=t, s=s, d=d, lr=lr, n=n, flag=flag, any=any_).items()}))"""
PARAMS = "t = (0.4, 1.0)\ns = 'x'\nd = {}\nlr = 5e-3\nn = 3\nflag = False\nany_ = None\nout_dir = 'runs/echo'"

def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}

def test_parameters_arrive_typed_and_escaped_never_evaluated(tmp_path):
    nb = notebook(tmp_path / 'echo.ipynb', PARAMS, ECHO)
    evil = "x'); open('PWNED', 'w'); ('\\"
    r = jepa_lab('run', nb, '-p', 't', '(0.3, 1)', '-p', 's', evil, '-p', 'd', '{1: True, "k": [1, 2]}', '-p', 'lr', '-1e-3',
                 '-p', 'flag', 'true', '-p', 'any_', 'null', '--out', tmp_path / 'out')
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads((tmp_path / 'out' / 'seen.json').read_text())
    assert seen['t'] == ['(0.3, 1.0)', 'tuple'] and seen['s'] == [repr(evil), 'str'] and seen['d'] == ["{1: True, 'k': [1, 2]}", 'dict']
    assert seen['lr'] == ['-0.001', 'float'] and seen['flag'] == ['True', 'bool'] and seen['any'] == ['None', 'NoneType']
    assert not (ROOT / 'PWNED').exists() and not (tmp_path / 'PWNED').exists()

@pytest.mark.parametrize('args, msg', [(['-p', 'n', '2.5'], 'parameter n: expected int, got 2.5'),
                                       (['-p', 'flag', '1'], 'parameter flag: expected bool, got 1'),
                                       (['-p', 't', "__import__('os')"], "is not a tuple literal"),
                                       (['-p', 'out_dir', 'x'], 'give the output folder with --out')])
def test_badly_typed_parameters_are_refused_before_anything_runs(tmp_path, args, msg):
    r = jepa_lab('run', notebook(tmp_path / 'echo.ipynb', PARAMS, ECHO), *args, '--out', tmp_path / 'out')
    assert r.returncode == 1 and msg in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'out').exists()

def test_a_run_folder_is_reused_only_for_the_same_parameters_and_replaced_only_on_request(tmp_path):
    nb, out = notebook(tmp_path / 'echo.ipynb', PARAMS, ECHO), tmp_path / 'out'
    assert jepa_lab('run', nb, '-p', 'n', '1', '--out', out).returncode == 0
    before = digest(out)
    r = jepa_lab('run', nb, '-p', 'n', '1', '--out', out)                  # the same parameters: a no-op
    assert r.returncode == 0 and 'already finished with these parameters' in r.stdout and digest(out) == before
    r = jepa_lab('run', nb, '-p', 'n', '2', '--out', out)                  # others: refused, nothing touched
    assert r.returncode == 1 and 'holds a run with other parameters (n: 1 -> 2)' in r.stderr and '--force' in r.stderr
    assert digest(out) == before
    r = jepa_lab('run', nb, '-p', 'n', '2', '--out', out, '--force')
    assert r.returncode == 0 and json.loads((out / 'seen.json').read_text())['n'] == ['2', 'int']
    assert json.loads((out / 'run.json').read_text())['status'] == 'finished'

def test_a_failing_cell_never_replaces_the_run_and_foreign_folders_are_left_alone(tmp_path):
    nb = notebook(tmp_path / 'boom.ipynb', "n = 1\nout_dir = 'x'", "assert n < 2, f'n is {n}'")
    r = jepa_lab('run', nb, '-p', 'n', '5', '--out', tmp_path / 'out')
    assert r.returncode == 1 and 'failed in cell' in r.stderr and 'AssertionError: n is 5' in r.stderr
    assert (tmp_path / 'out' / 'boom.failed.ipynb').exists() and not (tmp_path / 'out' / 'boom.ipynb').exists()
    assert not (tmp_path / 'out' / 'report.html').exists() and json.loads((tmp_path / 'out' / 'run.json').read_text())['status'] == 'failed'
    assert jepa_lab('run', nb, '-p', 'n', '5', '--out', tmp_path / 'out', '--force').returncode == 1      # still failing
    r = jepa_lab('run', nb, '-p', 'n', '1', '--out', tmp_path / 'out', '--force')
    assert r.returncode == 0 and (tmp_path / 'out' / 'boom.ipynb').exists() and not (tmp_path / 'out' / 'boom.failed.ipynb').exists()
    mine = tmp_path / 'home'; mine.mkdir(); (mine / 'thesis.tex').write_text('precious')
    for extra in ([], ['--force']):
        r = jepa_lab('run', nb, '--out', mine, *extra)
        assert r.returncode == 1 and ('not empty and holds no jepa-lab run' in r.stderr or 'not a jepa-lab run folder' in r.stderr)
    assert digest(mine) == {'thesis.tex': hashlib.sha256(b'precious').hexdigest()}

def test_a_second_run_into_a_busy_folder_fails_at_once_naming_the_holder(tmp_path):
    nb = notebook(tmp_path / 'slow.ipynb', "secs = 1\nout_dir = 'x'", "import time; time.sleep(secs)")
    code = 'import sys; from jepa_lab.cli import main; sys.exit(main(sys.argv[1:]))'
    first = subprocess.Popen([sys.executable, '-c', code, 'run', str(nb), '-p', 'secs', '60', '--out', str(tmp_path / 'out')], cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not (tmp_path / 'out' / 'run.json').exists() and time.time() < deadline: time.sleep(0.1)
        t0 = time.time()
        r = jepa_lab('run', nb, '-p', 'secs', '60', '--out', tmp_path / 'out')
        assert r.returncode == 1 and f'is in use by pid {first.pid} on host' in r.stderr, r.stderr[-2000:]
        assert time.time() - t0 < 30
    finally: first.kill(); first.wait()

def test_bad_paths_are_named(tmp_path):
    r = jepa_lab('run', tmp_path, '--out', tmp_path / 'out')
    assert r.returncode == 1 and 'is a folder, not a notebook' in r.stderr
    (tmp_path / 'junk.ipynb').write_text('not json')
    r = jepa_lab('run', tmp_path / 'junk.ipynb', '--out', tmp_path / 'out')
    assert r.returncode == 1 and 'junk.ipynb is not a readable notebook' in r.stderr
    (tmp_path / 'file').write_text('')
    r = jepa_lab('run', notebook(tmp_path / 'echo.ipynb', PARAMS, ECHO), '--out', tmp_path / 'file')
    assert r.returncode == 1 and 'is a file, not a folder' in r.stderr
