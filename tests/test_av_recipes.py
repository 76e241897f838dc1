"""data_recipes/av_clips.py end to end: fake VGGSound and AudioSet CSVs and tiny source videos in, clips that
AVClipFolder / AVClipCSV read with the right labels out, and every bad source skipped and counted."""
import importlib.util, json, sys, warnings
import numpy as np
import pytest
import torch
from conftest import ROOT

pytest.importorskip('av')
from jepa_lab.data import AVClipCSV, AVClipFolder, read_clip, write_clip


def _load_recipe():
    spec = importlib.util.spec_from_file_location('av_clips', ROOT / 'data_recipes' / 'av_clips.py')
    mod = sys.modules['av_clips'] = importlib.util.module_from_spec(spec)   # registered, so worker processes can unpickle its functions
    spec.loader.exec_module(mod)
    return mod

recipe = _load_recipe()
FPS, TONE = 4, {'dog': 440.0, 'flute': 880.0}   # each class sounds its own tone, so a clip's audio tells its class
OPTS = ['--fps', '4', '--size', '16', '--quiet']


def source(path, seconds, hz, sample_rate=16000, amp=0.5):
    "A 16x16 video whose brightness is 20 * t (so a clip shows where it was cut) with a tone of `hz` (0: silence)."
    t = torch.arange(round(seconds * FPS)) / FPS
    video = (20 * t).round().to(torch.uint8).view(1, -1, 1, 1).expand(3, -1, 16, 16)
    ts = torch.arange(round(seconds * sample_rate)) / sample_rate
    return write_clip(path, video, amp * torch.sin(2 * torch.pi * hz * ts) if hz else torch.zeros(len(ts)), FPS, sample_rate)


def video_only(path):
    "A 16x16 video of 40 frames and no sound track."
    import av
    with av.open(str(path), 'w') as out:
        s = out.add_stream('libx264', rate=FPS); s.width = s.height = 16; s.pix_fmt = 'yuv420p'
        for _ in range(40): out.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format='rgb24')))
        out.mux(s.encode())


@pytest.fixture(scope='module')
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp('src')
    source(d / 'vidA.mp4', 12, TONE['dog'], sample_rate=44100)   # a whole video at 44.1 kHz, cut from 1 s
    source(d / 'vidB.mkv', 10, TONE['flute'], sample_rate=22050)
    source(d / 'vidC_30.mkv', 10, TONE['dog'])                   # already the segment from 30 s
    source(d / 'vidD.mp4', 8, TONE['flute'])                     # cut from 5 s: 3 s left
    (d / 'vidF.mp4').write_bytes(np.random.default_rng(0).bytes(4000))
    source(d / 'vidG.mkv', 10, 0)                                 # silent
    video_only(d / 'vidH.mkv')
    whole = source(d / 'full.mkv', 10, TONE['dog']).read_bytes()
    (d / 'vidI.mkv').write_bytes(whole[:len(whole) // 2])         # an interrupted download
    return d


def peak_hz(audio, sample_rate=16000):
    return np.fft.rfftfreq(len(audio), 1 / sample_rate)[np.abs(np.fft.rfft(audio.numpy())).argmax()]


VGGSOUND = '''vidA,1,dog barking,train
vidB,0,playing flute,train
vidE,0,dog barking,train
vidF,0,dog barking,train
vidG,0,playing flute,train
vidC,30,dog barking,test
vidD,5,playing flute,test
vidH,0,"people eating, crisps",test
'''


@pytest.fixture(scope='module')
def vggsound(src, tmp_path_factory):
    d = tmp_path_factory.mktemp('vggsound')
    (d / 'vggsound.csv').write_text(VGGSOUND)
    meta = recipe.main(['vggsound', '--csv', str(d / 'vggsound.csv'), '--src', str(src), '--out', str(d / 'out'), *OPTS])
    return d / 'out', meta


def test_vggsound_clips_read_by_folder_with_their_labels(vggsound):
    out, _ = vggsound
    train, test = AVClipFolder(out / 'train'), AVClipFolder(out / 'test')
    assert train.classes == test.classes == ['dog barking', 'people eating, crisps', 'playing flute'], "every split has every class"
    assert [f.name for f in train.files] == ['vidA_1.mp4', 'vidB_0.mp4'] and train.labels == [0, 2]
    assert [f.name for f in test.files] == ['vidC_30.mp4'] and test.labels == [0]
    for ds in (train, test):
        for i in range(len(ds)):
            c = ds[i]
            assert c['video'].shape == (3, 40, 16, 16) and c['fps'] == 4 and c['audio'].shape == (160000,), "10 s at 4 fps and 16 kHz"
            assert abs(peak_hz(c['audio']) - TONE[['dog', None, 'flute'][c['label']]]) < 1, "the clip's sound is its class's"
    first, last = (train[0]['video'][:, k].float().mean().item() for k in (0, -1))
    assert abs(first - 20) < 3 and abs(last - 20 * (1 + 39 / 4)) < 3, f"cut from 1 s to 11 s, got brightness {first}, {last}"


def test_vggsound_bad_sources_skipped_and_counted(vggsound):
    out, meta = vggsound
    saved = json.loads((out / 'metadata.json').read_text())
    assert saved == meta and saved['fps'] == 4 and saved['size'] == 16 and saved['n_classes'] == 3
    assert saved['splits']['train'] == dict(listed=5, written=2, existing=0, missing=1, unreadable=1, short=0, silent=1)
    assert saved['splits']['test'] == dict(listed=3, written=1, existing=0, missing=0, unreadable=1, short=1, silent=0)
    rows = (out / 'skipped.csv').read_text().splitlines()
    assert rows[0] == 'split,youtube_id,start_seconds,reason,detail' and len(rows) == 6
    reasons = {r.split(',')[1]: r.split(',')[3] for r in rows[1:]}
    assert reasons == dict(vidE='missing', vidF='unreadable', vidG='silent', vidD='short', vidH='unreadable')
    assert 'has no audio stream' in next(r for r in rows if r.startswith('test,vidH'))
    assert not list(out.rglob('.*.tmp.mp4')), "no half-written clips"


CLASSES = '''index,mid,display_name
0,/m/dog,"Dog"
1,/m/flute,"Flute"
2,/m/speech,"Male speech, man speaking"
3,/m/unused,"Unused"
'''
TRAIN = '''# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=4, num_segs=4, num_unique_labels=3, num_positive_labels=5
# YTID, start_seconds, end_seconds, positive_labels
vidA, 1.000, 11.000, "/m/dog,/m/speech"
vidB, 0.000, 10.000, "/m/flute"
vidE, 0.000, 10.000, "/m/dog"
vidI, 0.000, 10.000, "/m/dog"
'''
EVAL = '''# YTID, start_seconds, end_seconds, positive_labels
vidC, 30.000, 40.000, "/m/dog"
vidG, 0.000, 10.000, "/m/flute"
'''


@pytest.fixture(scope='module')
def audioset(src, tmp_path_factory):
    d = tmp_path_factory.mktemp('audioset')
    for name, text in [('class_labels_indices.csv', CLASSES), ('balanced_train_segments.csv', TRAIN), ('eval_segments.csv', EVAL)]:
        (d / name).write_text(text)
    args = ['audioset', '--csv', f"train={d / 'balanced_train_segments.csv'}", '--csv', str(d / 'eval_segments.csv'),
            '--classes', str(d / 'class_labels_indices.csv'), '--src', str(src), '--out', str(d / 'out'), *OPTS]
    return d / 'out', recipe.main(args + ['--workers', '2']), args


def test_audioset_clips_read_by_csv_with_multi_hot_labels(audioset):
    out, *_ = audioset
    assert (out / 'classes.txt').read_text().splitlines() == ['Dog', 'Flute', 'Male speech, man speaking', 'Unused']
    assert (out / 'train.csv').read_text().splitlines() == ['path,labels', 'train/vidA_1.mp4,"Dog;Male speech, man speaking"',
                                                           'train/vidB_0.mp4,Flute']
    train = AVClipCSV(out / 'train.csv', classes=out / 'classes.txt')
    assert train.multi_label and train.labels == [(0, 2), (1,)]
    a, b = train[0], train[1]
    assert a['label'].tolist() == [1, 0, 1, 0] and b['label'].tolist() == [0, 1, 0, 0]
    assert abs(peak_hz(a['audio']) - TONE['dog']) < 1 and abs(peak_hz(b['audio']) - TONE['flute']) < 1
    ev = AVClipCSV(out / 'eval.csv', classes=out / 'classes.txt', multi_label=True)
    assert len(ev) == 1 and ev[0]['label'].tolist() == [1, 0, 0, 0] and ev[0]['video'].shape == (3, 40, 16, 16)


def test_audioset_bad_sources_skipped_and_counted_and_rerun_keeps_clips(audioset):
    out, meta, args = audioset
    assert meta['splits'] == dict(train=dict(listed=4, written=2, existing=0, missing=1, unreadable=1, short=0, silent=0),
                                  eval=dict(listed=2, written=1, existing=0, missing=0, unreadable=0, short=0, silent=1))
    assert meta['totals']['written'] == 3 and meta['n_classes'] == 4
    assert 'vidI.mkv is truncated or corrupt' in (out / 'skipped.csv').read_text()
    stamp = (out / 'train' / 'vidA_1.mp4').stat().st_mtime_ns
    again = recipe.main(args)
    assert again['splits']['train'] == dict(listed=4, written=0, existing=2, missing=1, unreadable=1, short=0, silent=0)
    assert (out / 'train' / 'vidA_1.mp4').stat().st_mtime_ns == stamp, "an existing clip is not redone"
    assert len(AVClipCSV(out / 'train.csv')) == 2, "the index lists kept clips too"


def test_bad_csvs_name_the_line(tmp_path):
    (tmp_path / 'v.csv').write_text('vidA,1,dog barking,train\nvidB,0,playing flute\n')
    with pytest.raises(ValueError, match='v.csv line 2: expected youtube_id'): recipe.read_vggsound_csv(tmp_path / 'v.csv')
    (tmp_path / 'v.csv').write_text('vidA,1,dog barking,train\n')
    with pytest.raises(FileNotFoundError, match='source folder'):
        recipe.prepare_vggsound(tmp_path / 'v.csv', tmp_path / 'nowhere', tmp_path / 'out')
    (tmp_path / 'c.csv').write_text(CLASSES)
    _, names = recipe.read_audioset_classes(tmp_path / 'c.csv')
    (tmp_path / 'a.csv').write_text('# header\nvidA, 1.000, 11.000, "/m/dog,/m/cat"\n')
    with pytest.raises(ValueError, match="a.csv line 2: label '/m/cat' is not in the class list"):
        recipe.read_audioset_csv(tmp_path / 'a.csv', 'train', names)
    (tmp_path / 'semi.csv').write_text('index,mid,display_name\n0,/m/x,"A;B"\n')
    with pytest.raises(ValueError, match="may not contain ';'"): recipe.read_audioset_classes(tmp_path / 'semi.csv')


def test_read_clip_resamples_44k_and_22k_to_16k(src):
    for name in ('vidA.mp4', 'vidB.mkv'):
        c = read_clip(src / name, start=1, duration=8)
        assert abs(len(c['audio']) - 8 * 16000) <= 16 and abs(peak_hz(c['audio']) - TONE['dog' if name == 'vidA.mp4' else 'flute']) < 1
