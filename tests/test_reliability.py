"""Runs that never lose data, tried as a hostile user and a flaky cluster would: kills at chosen and random instants, a full disk,
two processes on one folder, configs through JSON, damaged files, bad inputs. Each test names the failure class of issue 13."""
import dataclasses, json, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from conftest import ROOT, tiny_config, timeless
from jepa_lab.files import RunFolderError, load_checkpoint, read_json, read_metrics, run_status, write_json
from jepa_lab.train import RunConfig, train

WORKER = str(ROOT / 'tests' / 'run_worker.py')

def worker(cfg, tmp_path, kill_at=None, **popen):
    p = tmp_path / f"cfg-{cfg.seed}-{Path(cfg.out_dir).name}.json"
    p.write_text(json.dumps(cfg.to_dict()))
    env = {**os.environ, **({'KILL_AT': kill_at} if kill_at else {})}
    return subprocess.Popen([sys.executable, WORKER, str(p)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)

def same_run(a: Path, b: Path):
    "Two run folders hold the same metrics and the same final weights."
    assert timeless(read_metrics(a)) == timeless(read_metrics(b))
    x, y = load_checkpoint(a / 'checkpoints' / 'last.pt'), load_checkpoint(b / 'checkpoints' / 'last.pt')
    assert x['step'] == y['step'] and all(torch.equal(x['method'][k], y['method'][k]) for k in x['method'])

# 1. a finished run run again, and a kill between the final checkpoint and the summary
def test_kill_during_the_summary_write_and_the_metrics_rewrite_then_resume_to_the_uninterrupted_run(tmp_path):
    ref = tiny_config(tmp_path / 'ref', steps=12, ckpt_every=4)
    train(ref)
    cfg = dataclasses.replace(ref, out_dir=str(tmp_path / 'run'))
    p = worker(cfg, tmp_path, kill_at='summary.json'); p.wait()         # killed mid-write of the finished summary
    assert p.returncode == -signal.SIGKILL and run_status(cfg.out_dir) == 'interrupted'
    assert list((tmp_path / 'run').glob('.summary.json.tmp*'))            # the kill left the complete temporary file
    again = train(cfg)                                                    # recovered from the final checkpoint, nothing retrained
    untimed = lambda s: {**s, 'final': timeless([s['final']])[0]}
    assert untimed(again) == untimed(read_json(tmp_path / 'ref' / 'summary.json')) and run_status(cfg.out_dir) == 'finished'
    assert not list((tmp_path / 'run').glob('.*.tmp*'))
    same_run(tmp_path / 'ref', tmp_path / 'run')
    part = dataclasses.replace(cfg, out_dir=str(tmp_path / 'part'))     # a run killed after a checkpoint, whose resume is killed too
    p = worker(part, tmp_path); deadline = time.time() + 120
    while p.poll() is None and time.time() < deadline:
        c = tmp_path / 'part' / 'checkpoints' / 'last.pt'
        if c.exists() and load_checkpoint(c)['step'] >= 4: break
        time.sleep(0.01)
    p.kill(); p.wait()
    step = load_checkpoint(tmp_path / 'part' / 'checkpoints' / 'last.pt')['step']
    if step < 12:
        p = worker(part, tmp_path, kill_at='metrics.jsonl'); p.wait()         # the resume's rewrite of metrics.jsonl is killed
        assert p.returncode == -signal.SIGKILL
    train(part)
    same_run(tmp_path / 'ref', tmp_path / 'part')

def started(run: Path, pid: int) -> dict | None:
    "The 'running' mark of the training process `pid` in `run` (it holds the lock; its steps follow), or None before it."
    try: s = json.loads((run / 'summary.json').read_text())
    except (FileNotFoundError, ValueError): return None
    return s if s.get('status') == 'running' and s.get('pid') == pid else None

def test_sigkill_at_random_instants_until_done_matches_the_uninterrupted_run(tmp_path):
    """Each training process is SIGKILLed at a random instant of the steps it has left (timed from its 'running' mark, not from its
    start, so that no kill is spent on start-up), and the next one resumes, until the run is done.
    The processes fork from a server that imported jepa_lab once: a fresh interpreter each time spent ~9 s importing here."""
    import multiprocessing, multiprocessing.forkserver
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload(['jepa_lab.train', 'sklearn.datasets', 'sklearn.model_selection'])
    p = ctx.Process(target=int); p.start(); p.join()                 # the server is up: its imports do not slow the reference down
    ref = tiny_config(tmp_path / 'ref', steps=16, ckpt_every=2)
    train(ref)
    per_step = min(r['sec_per_step'] for r in read_metrics(tmp_path / 'ref'))   # its fastest: a lower bound on a resumed step's time
    cfg, rng, kills = dataclasses.replace(ref, out_dir=str(tmp_path / 'run')), random.Random(0), 0
    while run_status(cfg.out_dir) != 'finished' and kills < 8:
        p = ctx.Process(target=train, args=(cfg,)); p.start(); deadline = time.time() + 120
        while not (mark := started(tmp_path / 'run', p.pid)) and p.is_alive() and time.time() < deadline: time.sleep(0.005)
        p.join(timeout=rng.uniform(0.0, 0.8 * per_step * (cfg.steps - (mark or {}).get('step', 0))))
        if p.exitcode is None: p.kill(); p.join(); kills += 1
        assert p.exitcode in (0, -signal.SIGKILL), f"the training process failed (exit code {p.exitcode})"
    if run_status(cfg.out_dir) != 'finished': train(cfg)
    same_run(tmp_path / 'ref', tmp_path / 'run')
    assert kills >= 1, "no kill landed mid-run"

# 3. two processes on one run folder
def test_a_second_process_on_a_run_folder_fails_at_once_naming_the_holder(tmp_path):
    cfg = tiny_config(tmp_path / 'run', steps=400, ckpt_every=50)
    p = worker(cfg, tmp_path); deadline = time.time() + 120
    while run_status(cfg.out_dir) != 'running' and time.time() < deadline: time.sleep(0.02)
    try:
        t0 = time.time()
        with pytest.raises(RunFolderError, match=f"is in use by pid {p.pid} on host"): train(dataclasses.replace(cfg, seed=1))
        assert time.time() - t0 < 5
    finally: p.kill(); p.wait()
    assert read_json(tmp_path / 'run' / 'config.json')['seed'] == 0                # the second process wrote nothing
    assert run_status(cfg.out_dir) == 'interrupted'

# 4. a full disk: a small tmpfs where this machine allows one, else a file-size limit (writes fail with EFBIG)
FULL_DISK = r'''
import json, os, resource, signal, subprocess, sys
cfg, mode, size, out = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
from jepa_lab.train import RunConfig, train
from jepa_lab.files import load_checkpoint
if mode == 'tmpfs':
    os.makedirs(out, exist_ok=True); subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', out], check=True)
else:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
try: train(RunConfig.from_dict({**cfg, 'out_dir': out})); print('NO ERROR')
except OSError as e: print('ERROR', e)
print('LEFT', sorted(os.listdir(out)), sorted(os.listdir(os.path.join(out, 'checkpoints'))) if os.path.isdir(os.path.join(out, 'checkpoints')) else [])
if mode == 'tmpfs': subprocess.run(['mount', '-o', 'remount,size=512m', out], check=True)    # space freed
else: resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
train(RunConfig.from_dict({**cfg, 'out_dir': out}))
subprocess.run(['cp', '-a', out, sys.argv[5]], check=True)
'''

def _can_mount_tmpfs(tmp_path) -> bool:
    d = tmp_path / 'probe'; d.mkdir()
    return shutil.which('unshare') is not None and subprocess.run(['unshare', '-rm', 'mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(d)],
                                                                  capture_output=True).returncode == 0

def test_a_full_disk_stops_the_run_naming_the_file_and_the_next_resume_completes_it(tmp_path):
    ref = tiny_config(tmp_path / 'ref', steps=12, ckpt_every=4)
    train(ref)
    ck = (tmp_path / 'ref' / 'checkpoints' / 'last.pt').stat().st_size
    tmpfs = _can_mount_tmpfs(tmp_path)
    mode, size = ('tmpfs', int(1.5 * ck) + 65536) if tmpfs else ('fsize', ck // 2)   # tmpfs: room for one checkpoint, not two
    args = [sys.executable, '-c', FULL_DISK, json.dumps(ref.to_dict()), mode, str(size), str(tmp_path / 'full'), str(tmp_path / 'freed')]
    r = subprocess.run((['unshare', '-rm'] if tmpfs else []) + args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    err = next(l for l in r.stdout.splitlines() if l.startswith(('ERROR', 'NO ERROR')))
    assert err.startswith('ERROR') and 'writing checkpoint' in err and 'last.pt failed' in err and 'the disk is full' in err, err
    left = next(l for l in r.stdout.splitlines() if l.startswith('LEFT'))
    assert '.tmp' not in left, left                                       # no temporary file left behind
    same_run(tmp_path / 'ref', tmp_path / 'freed')

# 5. configs through config.json, tuples included
def test_a_run_resumes_from_its_own_config_json_with_tuples(tmp_path):
    cfg = tiny_config(tmp_path / 'run', steps=2, method_args=dict(global_scale=(0.5, 1.0), local_scale=(0.2, 0.5)))
    first = train(cfg)
    back = RunConfig.from_dict(read_json(tmp_path / 'run' / 'config.json'))
    assert back == cfg and back.method_args['global_scale'] == (0.5, 1.0)
    assert train(back) == first                                           # the same run: a no-op, not "a different config"

# 6. silent corruption and silent acceptance
def test_flipped_bytes_in_a_checkpoint_are_refused_by_resume_and_load(tmp_path):
    import zipfile
    from jepa_lab.eval import load_method
    cfg = tiny_config(tmp_path / 'run', steps=3, ckpt_every=1)
    train(dataclasses.replace(cfg, steps=2))
    shutil.rmtree(tmp_path / 'run'); train(dataclasses.replace(cfg, steps=3))
    ck = tmp_path / 'run' / 'checkpoints' / 'last.pt'
    with zipfile.ZipFile(ck) as z: e = max(z.infolist(), key=lambda i: i.file_size)
    raw = bytearray(ck.read_bytes()); raw[e.header_offset + 200] ^= 0x01; ck.write_bytes(raw)
    with pytest.raises(RuntimeError, match=f"checkpoint {ck} is corrupt"): load_method(tmp_path / 'run')
    with pytest.raises(RuntimeError, match="is corrupt"): train(cfg)

@pytest.mark.parametrize('kw, msg', [(dict(steps=2.5), 'RunConfig.steps: expected int, got 2.5'), (dict(epochs=0), 'RunConfig.epochs must be >0'),
    (dict(epochs=-3), 'RunConfig.epochs must be >0'), (dict(warmup_frac=2), 'RunConfig.warmup_frac must be [0,1)'),
    (dict(method_args=dict(lam=True)), 'LeJEPAConfig.lam: expected float, got True'), (dict(method_args=dict(lam='0.1')), "LeJEPAConfig.lam: expected float, got '0.1'"),
    (dict(method_args=dict(patch_size=4.0)), 'LeJEPAConfig.patch_size: expected int, got 4.0'), (dict(method_args=dict(n_slices=0)), 'LeJEPAConfig.n_slices must be >=1'),
    (dict(method_args=dict(proj_dim=0)), 'LeJEPAConfig.proj_dim must be >=1'), (dict(method_args=dict(drop_path=2)), 'LeJEPAConfig.drop_path must be [0,1)')])
def test_bad_values_are_refused_naming_the_field(tmp_path, kw, msg):
    with pytest.raises((TypeError, ValueError), match=__import__('re').escape(msg)): tiny_config(tmp_path, **kw)

# 8. errors that name the field or the file
def test_an_edited_config_json_is_named_when_loading(tmp_path):
    from jepa_lab.eval import load_method
    train(tiny_config(tmp_path / 'run', steps=2))
    c = read_json(tmp_path / 'run' / 'config.json'); c['method_args']['proj_dim'] = 16; write_json(c, tmp_path / 'run' / 'config.json')
    with pytest.raises(RuntimeError, match="does not fit the method .*config.json describes \\(was config.json edited\\?\\)"): load_method(tmp_path / 'run')
    (tmp_path / 'run' / 'config.json').write_text('{"method": ')
    with pytest.raises(ValueError, match="run config .*config.json is not valid JSON"): load_method(tmp_path / 'run')

def test_one_class_data_and_raw_pixels_are_refused(tmp_path):
    from jepa_lab.data.core import register_dataset
    from jepa_lab.data import make_dataset
    from jepa_lab.methods import create_method
    from conftest import tiny_method_args
    @register_dataset('one_class_digits')
    def one_class(split='train', **kw):
        ds = make_dataset('digits', split, **kw)
        ds.classes = ds.classes[:1]
        return ds
    with pytest.raises(ValueError, match="dataset 'one_class_digits' has 1 class"): train(tiny_config(tmp_path, dataset='one_class_digits'))
    m = create_method('lejepa', **tiny_method_args())
    with pytest.raises(TypeError, match=r"expected images as a float tensor, got torch.uint8"): m({'global': torch.zeros(4, 2, 3, 16, 16, dtype=torch.uint8)}, 0)
    with pytest.raises(TypeError, match=r"expected images in torch.float32, got torch.float64"): m({'global': torch.zeros(4, 2, 3, 16, 16, dtype=torch.float64)}, 0)
