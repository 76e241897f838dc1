"""Data at scale: the lazy folder reader's start-up time and memory do not grow with the folder (1,000 against 100,000
files); tar shards with a corrupt sample skip and count it, also as written by data_recipes/folder_to_shards.py; a
DataLoader worker that dies stops `train` with an error naming it and leaves a run that resumes to the same result."""
import importlib.util, io, json, os, subprocess, sys, time, tracemalloc
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, get_worker_info
from conftest import ROOT, tiny_config
from jepa_lab.data import TarShards, digits, lazy_image_folder, make_dataset, register_dataset
from jepa_lab.train import StepSampler, train
from jepa_lab.views import ViewDataset, probe_view

pytest.importorskip('webdataset')
import webdataset as wds


def linked_folder(root, n, classes=10):
    "root/<class>/<k>.png: `n` files in `classes` folders, each folder hard links of one 32x32 PNG (a link costs a directory entry, not a file)."
    rng = np.random.default_rng(0)
    for c in range(classes):
        (d := root / f'c{c:02d}').mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(d / f'{0:06d}.png')
        for k in range(1, n // classes): os.link(d / f'{0:06d}.png', d / f'{k:06d}.png')
    return root


def first_batch(folder):
    "Seconds and peak traced bytes (tracemalloc) from listing `folder` to the first batch of 64 through a DataLoader worker."
    tracemalloc.start()
    t0 = time.perf_counter()
    ds = lazy_image_folder(folder, size=16)
    sampler = StepSampler(len(ds), 64, seed=0, total=1)
    views, labels = next(iter(DataLoader(ViewDataset(ds, probe_view(16)), batch_sampler=sampler, num_workers=1)))
    seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert views.shape == (64, 3, 16, 16) and labels.tolist() == [int(ds.labels[i]) for i, _ in sampler.batch(0)]
    return seconds, peak, ds


def test_lazy_folder_starts_as_fast_and_small_at_100k_files_as_at_1k(tmp_path):
    small, large = linked_folder(tmp_path / 'small', 1_000), linked_folder(tmp_path / 'large', 100_000)
    first_batch(small)                                               # imports and caches warm, as in both runs below
    (t_small, m_small, _), (t_large, m_large, ds) = first_batch(small), first_batch(large)
    per_file = (ds._blob.nbytes + ds._offsets.nbytes + ds.labels.nbytes) / len(ds)
    print(f"first batch: 1k files {t_small:.2f} s, {m_small / 2**20:.1f} MiB peak; 100k files {t_large:.2f} s, "
          f"{m_large / 2**20:.1f} MiB peak; {per_file:.0f} bytes held per file")
    assert len(ds) == 100_000 and ds.path(99_999) == tmp_path / 'large' / 'c09' / '009999.png'
    assert per_file < 32, "names, offsets and labels as arrays: no Python object per file"
    assert m_large - m_small < 16 * 2**20, f"peak memory grew by {(m_large - m_small) / 2**20:.1f} MiB for 99,000 more files"
    assert t_large < t_small + 3.0, f"the first batch took {t_large:.2f} s at 100k files against {t_small:.2f} s at 1k"


def png(x):
    b = io.BytesIO(); Image.fromarray(x.permute(1, 2, 0).numpy()).save(b, 'PNG'); return b.getvalue()


def test_a_corrupt_sample_in_a_shard_is_skipped_and_counted(tmp_path):
    data = digits('test', size=16)
    with wds.ShardWriter(str(tmp_path / 'shard-%06d.tar'), maxcount=16, verbose=0) as w:
        for k in range(40):
            w.write({'__key__': f'{k:03d}', 'png': b'\x89PNG but not really' if k == 21 else png(data.images[k]), 'cls': int(data.labels[k])})
    with pytest.warns(UserWarning, match=r"skipped 1 of 40 samples in 3 shards .*shard-000001\.tar:021"):
        ds = TarShards(sorted(tmp_path.glob('*.tar')), classes=data.classes)
    keep = [k for k in range(40) if k != 21]
    assert len(ds) == 39 and ds.skipped[0].startswith('shard-000001.tar:021: ')
    assert torch.equal(torch.stack([ds[i][0] for i in range(39)]), data.images[keep]) and ds.labels.tolist() == data.labels[keep].tolist()
    with pytest.warns(UserWarning, match='skipped 1 of 40'):          # the cached index still counts it
        assert len(TarShards(sorted(tmp_path.glob('*.tar')))) == 39


def load_recipe():
    spec = importlib.util.spec_from_file_location('folder_to_shards', ROOT / 'data_recipes' / 'folder_to_shards.py')
    mod = sys.modules['folder_to_shards'] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_folder_to_shards_writes_what_the_folder_holds_and_skips_a_corrupt_file(tmp_path):
    data = digits('test', size=16)
    for split, idx in (('train', range(0, 48)), ('test', range(48, 64))):
        for k in idx:
            (d := tmp_path / 'src' / split / data.classes[data.labels[k]]).mkdir(parents=True, exist_ok=True)
            (d / f'img.{k:03d}.png').write_bytes(png(data.images[k]))
    bad = tmp_path / 'src' / 'train' / data.classes[data.labels[5]] / 'img.005.png'
    bad.write_bytes(b'truncated')
    recipe = load_recipe()
    counts = recipe.main([str(tmp_path / 'src'), str(out := tmp_path / 'out'), '--maxcount', '10', '--quiet'])
    assert counts['train'] == dict(listed=48, written=47, skipped=1, shards=5) and counts['test']['written'] == 16
    assert json.loads((out / 'metadata.json').read_text())['splits'] == counts
    assert str(bad) in (out / 'skipped.txt').read_text()
    assert sorted((out / 'train').glob('*.index.npz')) and (out / 'classes.txt').read_text().split() == sorted(set(data.classes[l] for l in data.labels[:64]))
    shards = make_dataset('tar_shards', 'train', root=out)
    folder = lazy_image_folder(tmp_path / 'src', 'train')
    as_set = lambda ds, n: sorted((ds.classes[y], x.numpy().tobytes()) for x, y in (ds[i] for i in range(n)))
    want = sorted((folder.classes[int(folder.labels[i])], folder.load(i)[0].numpy().tobytes()) for i in range(48) if folder.path(i) != bad)
    assert len(shards) == 47 and not shards.skipped and as_set(shards, 47) == want, "the same images under the same class names"
    with pytest.raises(SystemExit): recipe.main([str(tmp_path / 'src'), str(out), '--quiet'])     # shards already there
    help_text = subprocess.run([sys.executable, str(ROOT / 'data_recipes' / 'folder_to_shards.py'), '--help'],
                               capture_output=True, text=True, check=True).stdout
    assert '--maxcount' in help_text and 'tar_shards' in help_text


@register_dataset('digits_with_a_dying_worker')
class DyingWorkerDigits(Dataset):
    "`digits` whose DataLoader worker exits (os._exit) at sample `at` once `checkpoint` exists, while the file `armed` exists."
    def __init__(self, split='train', size=16, at=0, checkpoint='', armed=''):
        self.base, self.at, self.checkpoint, self.armed = digits(split, size=size), at, checkpoint, armed
        self.classes = self.base.classes

    def __len__(self): return len(self.base)

    def __getitem__(self, i):
        if i == self.at and get_worker_info() is not None and os.path.exists(self.armed):
            for _ in range(400):                                        # die only after the step-3 checkpoint is on disk
                if os.path.exists(self.checkpoint): os._exit(7)
                time.sleep(0.05)
        return self.base[i]


def test_a_dying_worker_stops_the_run_with_an_error_and_the_run_resumes(tmp_path):
    run, armed = tmp_path / 'run', tmp_path / 'armed'
    armed.touch()
    at = StepSampler(1437, 16, seed=0).batch(4)[0][0]                 # a sample of step 4's batch, after the checkpoint at step 3
    args = dict(size=16, at=at, checkpoint=str(run / 'checkpoints' / 'last.pt'), armed=str(armed))
    cfg = tiny_config(run, dataset='digits_with_a_dying_worker', dataset_args=args, num_workers=1)
    with pytest.raises(RuntimeError, match=r'DataLoader worker( \(pid.*\) exited unexpectedly| died while handing over)'):   # torch's words, or ours
        train(cfg)
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['status'] == 'interrupted' and summary['step'] in (3, 4) and 'DataLoader worker' in summary['error']
    armed.unlink()
    resumed = train(cfg)
    reference = train(tiny_config(tmp_path / 'reference', dataset='digits_with_a_dying_worker', dataset_args=args, num_workers=0))
    assert len(json.loads((run / 'environment.json').read_text())['starts']) == 2, "the second start resumed the first"
    assert resumed['status'] == 'finished' and resumed['final'] == {**reference['final'], 'sec_per_step': resumed['final']['sec_per_step']}

def test_a_worker_death_seen_as_a_reset_connection_is_named_and_the_run_resumes(tmp_path, monkeypatch):
    "A worker that dies while its batch is unpickled surfaces as ConnectionResetError, not torch's own error: the trainer names it."
    import jepa_lab.train.loop as loop
    real = loop.DataLoader
    class Dying(real):
        def __iter__(self):
            for i, batch in enumerate(super().__iter__()):
                if i == 4: raise ConnectionResetError(104, 'Connection reset by peer')
                yield batch
    monkeypatch.setattr(loop, 'DataLoader', Dying)
    cfg = tiny_config(tmp_path / 'run', num_workers=1)
    with pytest.raises(RuntimeError, match=r"a DataLoader worker died while handing over step 4's batch \(ConnectionResetError"):
        train(cfg)
    summary = json.loads((tmp_path / 'run' / 'summary.json').read_text())
    assert summary['status'] == 'interrupted' and summary['step'] == 4 and 'ConnectionResetError' in summary['error']
    monkeypatch.setattr(loop, 'DataLoader', real)
    assert train(cfg)['status'] == 'finished'                               # resumed from the checkpoint at step 3
