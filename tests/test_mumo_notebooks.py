"""The Le MuMo notebooks through `jepa-lab run` with tiny parameters: the main and compute tables have a row per requested method
with finite numbers, and the analysis notebook trains a run when needed and draws both figures."""
import json, math
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
    r = jepa_lab('run', str(TABLE), *TINY, '-p', 'methods', repr(methods), '--out', str(tmp_path))
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
    ckpt = (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').read_bytes()
    r = jepa_lab('run', str(TABLE), *TINY, '-p', 'methods', "['lemumo']", '-p', 'resume', 'True', '--out', str(tmp_path))   # probe the same encoder again
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((tmp_path / 'results.json').read_text())['main'][0]
    assert (tmp_path / 'lemumo' / 'checkpoints' / 'last.pt').read_bytes() == ckpt                  # not retrained
    assert all(again[k] == res['main'][0][k] for k in MAIN_KEYS) and again['ssl_s'] == res['main'][0]['ssl_s']

def test_mumo_table_names_an_unknown_row(tmp_path):
    r = jepa_lab('run', str(TABLE), *TINY, '-p', 'methods', "['lemumo', 'byol']", '--out', str(tmp_path))
    assert r.returncode == 1 and "unknown row(s) ['byol']" in r.stderr and 'rgb_lejepa_frozen' in r.stderr

def test_mumo_analysis_trains_when_needed_and_draws_both_figures(tmp_path):
    run_dir = tmp_path / 'run'
    args = {'encoder': 'vit_nano', 'patch_size': 8, 'global_size': 32, 'local_size': 16, 'n_local': 2, 'probe_size': 32, 'proj_hidden': 64, 'n_slices': 32}
    r = jepa_lab('run', str(ANALYSIS), '-p', 'run_dir', str(run_dir), '-p', 'steps', '2', '-p', 'batch_size', '8', '-p', 'n_train', '16',
                 '-p', 'size', '32', '-p', 'method_args', repr(args), '-p', 'probe_steps', '2', '-p', 'probe_batch_size', '8',
                 '-p', 'val_every', '1', '-p', 'n_val', '8', '-p', 'n_scenes', '2', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run_dir / 'checkpoints' / 'last.pt').exists() and (run_dir / 'patch_probes.pt').exists()
    assert {p.name for p in (run_dir / 'figures').iterdir()} >= {'fused_pca.png', 'probe_predictions.png'}
