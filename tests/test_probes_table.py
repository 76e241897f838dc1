"""jepa_lab.probes.table without the notebook: a frozen row is its trained row's initialisation, and a row's numbers are a
function of its settings (rerunning the probe stage on the same encoder gives the same row)."""
import json
import torch
from jepa_lab.probes.table import TableConfig, row_run, table_scenes, probe_row, probe_rows, compute_rows
from jepa_lab.train import build_method

TINY = dict(steps=2, batch_size=8, lr=1e-3, n_train=16, n_val=8, n_test=8, size=32, encoder='vit_nano',
            method_args={'patch_size': 8, 'n_local': 2, 'proj_hidden': 64, 'n_slices': 32}, probes=['det3d', 'seg', 'depth', 'occupancy'],
            probe_steps=2, probe_batch_size=8, probe_lr=1e-3, val_every=1, cache_views=True, normalize=True, resume=False, seed=0, device='cpu')
TIMINGS = ('ssl_s', 'probe_s')

def test_frozen_rows_probe_the_initialisation_their_trained_rows_start_from(tmp_path):
    cfg = TableConfig(**TINY, out_dir=str(tmp_path))
    for frozen, trained in (('rgb_lejepa_frozen', 'rgb_lejepa'), ('random_init', 'lemumo')):
        a, b = (build_method(row_run(name, cfg)).state_dict() for name in (frozen, trained))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (frozen, trained)

def test_probing_the_same_encoder_twice_gives_the_same_row(tmp_path):
    scenes = table_scenes(TableConfig(**TINY, out_dir=str(tmp_path)))
    lines = []
    first = probe_rows(['rgb_lejepa_frozen', 'random_init'], TableConfig(**TINY, out_dir=str(tmp_path / 'a')), scenes, log=lines.append)
    again = probe_row('random_init', TableConfig(**TINY, out_dir=str(tmp_path / 'b')), scenes)
    assert [line.split()[0] for line in lines] == ['rgb_lejepa_frozen', 'random_init']
    assert {k: v for k, v in first[1].items() if k not in TIMINGS} == {k: v for k, v in again.items() if k not in TIMINGS}
    assert first[0]['det3d/mAP_xz'] != first[1]['det3d/mAP_xz'] or first[0]['seg/mIoU'] != first[1]['seg/mIoU']   # two encoders, two rows
    saved = json.loads((tmp_path / 'a' / 'random_init' / 'row.json').read_text())
    assert saved == json.loads(json.dumps(first[1]))
    assert compute_rows(['rgb_lejepa_frozen', 'random_init'], TableConfig(**TINY, out_dir=str(tmp_path)), 2) == []   # no SSL, no cost
