"""The Le MuMo notebooks through `jepa-lab run` with tiny parameters: the main and compute tables have a row per requested method
with finite numbers, a rerun reuses finished rows and a row folder of another config fails; the analysis notebook trains its own run
under --out or only reads a given one, and draws both figures."""
import json, math
import pytest
from test_cli import ROOT, jepa_lab

TABLE = ROOT / 'nbs' / 'experiments' / 'mumo_table.ipynb'
ANALYSIS = ROOT / 'nbs' / 'viz' / 'mumo_analysis.ipynb'
TINY = ['-p', 'steps', '2', '-p', 'batch_size', '8', '-p', 'n_train', '16', '-p', 'n_val', '8', '-p', 'n_test', '8', '-p', 'size', '32',
        '-p', 'probe_steps', '2', '-p', 'probe_batch_size', '8', '-p', 'val_every', '1', '-p', 'profile_batch', '2',
        '-p', 'method_args', "{'patch_size': 8, 'n_local': 2, 'proj_hidden': 64, 'n_slices': 32}"]
MAIN_KEYS = ('det3d/mAP_xz', 'det3d/mAP_xy', 'det3d/ADE_xz', 'depth/MAE', 'seg/mIoU', 'occupancy/IoU')

def finite(x): return isinstance(x, (int, float)) and math.isfinite(x)

def test_mumo_table_has_a_row_per_method_with_finite_metrics(tmp_path):
    methods = ['lemumo', 'rgb_lejepa', 'rgb_lejepa_frozen']
    args = ['run', str(TABLE), *TINY, '-p', 'methods', repr(methods), '-p', 'resume', 'True', '--out', str(tmp_path)]
    r = jepa_lab(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'results.json').read_text())
    assert [row['method'] for row in res['main']] == methods
    assert [row['trained'] for row in res['main']] == [True, True, False] and res['main'][2]['ssl_steps'] == 0
    for row in res['main']:
        assert all(finite(row[k]) for k in MAIN_KEYS), row
        assert 0 <= row['det3d/mAP_xz'] <= 1 and 0 <= row['seg/mIoU'] <= 1 and row['depth/MAE'] > 0
    assert [row['method'] for row in res['compute']] == ['lemumo', 'rgb_lejepa']          # frozen rows have no SSL cost
    assert all(finite(row['gflops_per_step']) and row['gflops_per_step'] > 0 and finite(row['ms_per_step']) for row in res['compute'])
    assert set(res['claim']) == {'depth_MAE_lower', 'mAP_xz_higher', 'mAP_xy_higher'}
    md = (tmp_path / 'results.md').read_text()
    assert all(f'| {m} |' in md for m in methods) and '| Method | GFLOPs/step |' in md
    assert (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').exists() and (tmp_path / 'rgb_lejepa_frozen' / 'patch_probes.pt').exists()
    ckpt, mtime = (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').read_bytes(), (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').stat().st_mtime_ns
    record = json.loads((tmp_path / 'run.json').read_text())                    # as a run killed after its rows trained leaves it
    (tmp_path / 'run.json').write_text(json.dumps({**record, 'status': 'running'})); (tmp_path / 'results.json').unlink()
    r = jepa_lab(*args)                                                         # the same parameters again: probe the same encoders
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((tmp_path / 'results.json').read_text())['main']
    assert (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').stat().st_mtime_ns == mtime           # not retrained: not even rewritten
    assert all(a[k] == b[k] for a, b in zip(again, res['main']) if b['trained'] for k in (*MAIN_KEYS, 'ssl_s'))   # same logged SSL time
    from jepa_lab.files import RunFolderError
    from jepa_lab.probes.table import TableConfig, probe_row
    cfg = TableConfig(steps=3, batch_size=8, lr=1e-3, n_train=16, n_val=8, n_test=8, size=32, encoder='vit_nano',
                      method_args={'patch_size': 8, 'n_local': 2, 'proj_hidden': 64, 'n_slices': 32}, probes=['seg'], probe_steps=2,
                      probe_batch_size=8, probe_lr=1e-3, val_every=1, cache_views=True, normalize=True, resume=True, seed=0, device='cpu',
                      out_dir=str(tmp_path))
    with pytest.raises(RunFolderError, match=r'different config \(steps: 2 -> 3\)'): probe_row('lemumo', cfg, ([], [], []))   # never reused
    assert (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').read_bytes() == ckpt

def test_mumo_table_names_an_unknown_row(tmp_path):
    r = jepa_lab('run', str(TABLE), *TINY, '-p', 'methods', "['lemumo', 'byol']", '--out', str(tmp_path))
    assert r.returncode == 1 and "unknown row(s) ['byol']" in r.stderr and 'rgb_lejepa_frozen' in r.stderr

def test_mumo_analysis_trains_its_own_run_or_only_reads_a_given_one(tmp_path):
    "run_dir '' trains into --out/run and keeps its fitted probes in --out; a given finished run_dir is read and never written."
    own, other = tmp_path / 'own', tmp_path / 'other'
    args = {'encoder': 'vit_nano', 'patch_size': 8, 'global_size': 32, 'local_size': 16, 'n_local': 2, 'probe_size': 32, 'proj_hidden': 64, 'n_slices': 32}
    probe = ['-p', 'probe_steps', '2', '-p', 'probe_batch_size', '8', '-p', 'val_every', '1', '-p', 'n_train', '16', '-p', 'n_val', '8', '-p', 'n_scenes', '2']
    r = jepa_lab('run', str(ANALYSIS), '-p', 'steps', '2', '-p', 'batch_size', '8', '-p', 'size', '32', '-p', 'method_args', repr(args),
                 *probe, '--out', str(own))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((own / 'run' / 'summary.json').read_text())['steps'] == 2 and (own / 'patch_probes.pt').exists()
    assert {p.name for p in (own / 'figures').iterdir()} >= {'fused_pca.png', 'probe_predictions.png'}
    state = lambda d: (d.stat().st_mtime_ns, sorted((p.relative_to(d), p.stat().st_mtime_ns) for p in d.rglob('*')))
    before = state(own / 'run')
    r = jepa_lab('run', str(ANALYSIS), '-p', 'run_dir', str(own / 'run'), *probe, '--out', str(other))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (other / 'patch_probes.pt').exists() and not (other / 'run').exists()
    assert {p.name for p in (other / 'figures').iterdir()} >= {'fused_pca.png', 'probe_predictions.png'}
    assert state(own / 'run') == before                                         # read only: nothing written, not even a lock
