"""Prepare VGGSound and AudioSet clips for `jepa_lab.av_data` from source videos you have already downloaded.

Neither dataset ships video: each is a list of YouTube segments (an id and a start time), and many of the videos
have since vanished. Users typically fetch the sources themselves with yt-dlp, either whole videos named by id,

    yt-dlp -f 'bv*[height<=360]+ba/b[height<=360]' -o 'SRC/%(id)s.%(ext)s' -- YOUTUBE_ID

or only the segment, named `<id>_<start>` (read from 0 s, since it already starts at the segment):

    yt-dlp --download-sections '*START-END' --force-keyframes-at-cuts -o 'SRC/%(id)s_START.%(ext)s' -- YOUTUBE_ID

This script never touches the network. For every row of the official CSV it finds the source in SRC (any
extension), decodes `--seconds` (10) from the segment's start, resamples the video to `--fps` frames per second
with the shorter side resized to `--size` pixels, mixes the audio to mono at `--sample-rate` (16 kHz), and writes
the clip with `jepa_lab.av_data.write_clip` (H.264 + AAC in .mp4):

    vggsound   vggsound.csv (youtube_id,start_seconds,label,split; no header)
               -> OUT/<split>/<class>/<id>_<start>.mp4               read with AVClipFolder(OUT / 'train')
    audioset   <split>_segments.csv (YTID, start_seconds, end_seconds, positive_labels; '#' comments, quoted
               comma-separated MIDs) and class_labels_indices.csv (index,mid,display_name)
               -> OUT/<split>.csv (path,labels) + OUT/<split>/<id>_<start>.mp4 + OUT/classes.txt
                                                  read with AVClipCSV(OUT / 'eval.csv', classes=OUT / 'classes.txt')

A row whose source is missing, unreadable (not a media file, no audio or no video stream, corrupt or truncated),
shorter than `--min-seconds` from the start, or silent is skipped; the counts per split go to OUT/metadata.json and
each skipped row, with its reason, to OUT/skipped.csv. Clips already in OUT are kept (`--overwrite` redoes them),
so an interrupted run can be resumed.

    python data_recipes/av_clips.py vggsound --csv vggsound.csv --src SRC --out data/vggsound --workers 8
    python data_recipes/av_clips.py audioset --csv balanced_train=balanced_train_segments.csv \\
        --csv eval=eval_segments.csv --classes class_labels_indices.csv --src SRC --out data/audioset
"""
import argparse, csv, json, os, sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jepa_lab.data import MIN_PEAK, read_clip, write_clip

REASONS = ('missing', 'unreadable', 'short', 'silent')


@dataclass(frozen=True)
class Segment:
    "One row of an official CSV: a YouTube id, the segment's start (s), its class names and split."
    ytid: str
    start: float
    labels: tuple
    split: str

    @property
    def name(self): return f"{self.ytid}_{self.start:g}"


class Skip(Exception):
    "A source that cannot give a clip; `reason` is one of `REASONS`."
    def __init__(self, reason, message): super().__init__(message); self.reason = reason


def read_vggsound_csv(path):
    "Segments of vggsound.csv: rows `youtube_id,start_seconds,label,split`, no header."
    segs = []
    with open(path, newline='') as fh:
        reader = csv.reader(fh)
        for row in reader:
            if not row or not ''.join(row).strip(): continue
            if len(row) != 4: raise ValueError(f"{path} line {reader.line_num}: expected youtube_id,start_seconds,label,split, got {row}")
            ytid, start, label, split = (s.strip() for s in row)
            segs.append(Segment(ytid, _seconds(start, path, reader.line_num), (label,), split))
    return segs


def read_audioset_classes(path):
    "Display names in index order and the map MID -> display name, from class_labels_indices.csv (index,mid,display_name)."
    with open(path, newline='') as fh: rows = list(csv.DictReader(fh))
    if not rows or not {'index', 'mid', 'display_name'} <= set(rows[0]):
        raise ValueError(f"{path} must have the columns index,mid,display_name")
    rows.sort(key=lambda r: int(r['index']))
    if bad := [r['display_name'] for r in rows if ';' in r['display_name']]:
        raise ValueError(f"{path}: class names may not contain ';' (the label separator): {bad[0]!r}")
    return [r['display_name'] for r in rows], {r['mid']: r['display_name'] for r in rows}


def read_audioset_csv(path, split, names):
    "Segments of an AudioSet segments CSV (`YTID, start_seconds, end_seconds, positive_labels`), labels as display names."
    segs = []
    with open(path, newline='') as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        for row in reader:
            if not row or row[0].lstrip().startswith('#'): continue
            if len(row) != 4: raise ValueError(f"{path} line {reader.line_num}: expected YTID, start_seconds, end_seconds, positive_labels, got {row}")
            mids = [m.strip() for m in row[3].split(',') if m.strip()]
            if unknown := [m for m in mids if m not in names]:
                raise ValueError(f"{path} line {reader.line_num}: label {unknown[0]!r} is not in the class list")
            segs.append(Segment(row[0].strip(), _seconds(row[1], path, reader.line_num), tuple(names[m] for m in mids), split))
    return segs


def _seconds(s, path, line):
    "`s` as a float, or a ValueError naming the line."
    try: return float(s)
    except ValueError: raise ValueError(f"{path} line {line}: start_seconds {s!r} is not a number") from None


def index_sources(src):
    "Source videos in `src` by stem: `<id>` -> path (a whole video) and (`<id>`, start) -> path for `<id>_<start>` (a segment)."
    index = {}
    for f in sorted(Path(src).iterdir()):
        if not f.is_file() or f.name.startswith('.') or f.suffix in ('.part', '.ytdl', '.json'): continue
        index.setdefault(f.stem, f)
        head, _, tail = f.stem.rpartition('_')
        if head and tail.isdigit(): index.setdefault((head, int(tail)), f)
    return index


def find_source(index, seg):
    "(path, offset in s) of the source of `seg`: a segment file starts at 0, a whole video at `seg.start`."
    if seg.start == int(seg.start) and (seg.ytid, int(seg.start)) in index: return index[seg.ytid, int(seg.start)], 0.0
    if seg.ytid in index: return index[seg.ytid], seg.start
    raise Skip('missing', f"no source {seg.ytid}.* or {seg.ytid}_{int(seg.start)}.*")


def _even_size(w, h, size):
    "(height, width) with the shorter side `size` (or as is) and both even, as yuv420p needs."
    s = size / min(w, h) if size else 1.0
    return max(2, round(h * s / 2) * 2), max(2, round(w * s / 2) * 2)


def cut_clip(path, offset, seconds=10.0, fps=8.0, size=224, sample_rate=16000, min_seconds=9.5, min_peak=MIN_PEAK):
    "Video uint8 (3,T,H,W) at `fps` and audio float32 (S,) at `sample_rate` of `seconds` from `offset` in `path`; or `Skip`."
    import av
    try:
        with av.open(str(path)) as c:
            if not c.streams.video or not c.streams.audio:
                raise Skip('unreadable', f"{path} has no {'video' if not c.streams.video else 'audio'} stream")
            w, h, length = c.streams.video[0].width, c.streams.video[0].height, c.duration / 1e6 if c.duration else None
        hw = _even_size(w, h, size) if w and h else None
        if length is not None and offset + min_seconds > length:
            raise Skip('short', f"{path} lasts {length:.2f} s: less than {min_seconds:g} s from {offset:g} s")
        clip = read_clip(path, img_size=hw, sample_rate=sample_rate, start=offset, duration=seconds)
    except Skip: raise
    except (av.FFmpegError, ValueError) as e: raise Skip('unreadable', str(e)) from e
    video, audio = clip['video'], clip['audio']
    have = min(video.shape[1] / clip['fps'], len(audio) / sample_rate, seconds)
    if have < min_seconds: raise Skip('short', f"{path} has {have:.2f} s from {offset:g} s, less than {min_seconds:g} s")
    peak = float(audio.abs().max())
    if peak < min_peak: raise Skip('silent', f"{path} is silent from {offset:g} s (peak {peak:.1e} < {min_peak:g})")
    n = int(have * fps + 1e-6)
    idx = np.minimum((np.arange(n) * clip['fps'] / fps + 1e-6).astype(int), video.shape[1] - 1)   # the frame shown at k / fps
    return video[:, idx], audio[:round(n / fps * sample_rate)]


def _make(task):
    "Cut and write one clip: (status, message), status 'written' or a reason of `REASONS`."
    src, offset, out, opts = task
    try: video, audio = cut_clip(src, offset, **opts)
    except Skip as e: return e.reason, str(e)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")   # renamed once complete: a clip in OUT is never half-written
    write_clip(tmp, video, audio, opts['fps'], opts['sample_rate'])
    os.replace(tmp, out)
    return 'written', ''


def _folder_name(label):
    "A class name as a folder name: '/' cannot be part of one."
    return label.replace('/', '_')


def prepare(segs, src, out, clip_path, seconds=10.0, fps=8.0, size=224, sample_rate=16000, min_seconds=None,
            min_peak=MIN_PEAK, workers=1, overwrite=False, progress=True):
    "Cut each segment into `out / clip_path(seg)`: its (status, message) in the order of `segs`, the settings; writes out/skipped.csv."
    src, out = Path(src), Path(out)
    if not src.is_dir(): raise FileNotFoundError(f"source folder {src} does not exist")
    index = index_sources(src)
    opts = dict(seconds=seconds, fps=fps, size=size, sample_rate=sample_rate, min_peak=min_peak,
                min_seconds=seconds - 0.5 if min_seconds is None else min_seconds)
    status, tasks = [None] * len(segs), {}
    for i, seg in enumerate(segs):
        if (out / clip_path(seg)).exists() and not overwrite: status[i] = 'existing', ''
        else:
            try: tasks[i] = (*find_source(index, seg), out / clip_path(seg), opts)
            except Skip as e: status[i] = e.reason, str(e)
    from tqdm.auto import tqdm
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as ex:
        done = ex.map(_make, tasks.values(), chunksize=16)
        for i, r in zip(tasks, tqdm(done, total=len(tasks), disable=not progress, desc=f"clips for {out}")): status[i] = r
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'skipped.csv', 'w', newline='') as fh:
        csv.writer(fh).writerows([('split', 'youtube_id', 'start_seconds', 'reason', 'detail'),
                                  *((s.split, s.ytid, f"{s.start:g}", r, m) for s, (r, m) in zip(segs, status) if r in REASONS)])
    return status, opts


class _Serial:
    "The `map` of an executor, run in this process."
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def map(self, fn, it, chunksize=1): return map(fn, it)


def _write_metadata(out, dataset, segs, status, opts, classes, sources):
    "Counts per split (listed, written, existing, and each skip reason) and the settings, to out/metadata.json."
    keys = ('listed', 'written', 'existing', *REASONS)
    splits = {}
    for seg, (st, _) in zip(segs, status):
        counts = splits.setdefault(seg.split, dict.fromkeys(keys, 0))
        counts['listed'] += 1; counts[st] += 1
    meta = dict(dataset=dataset, sources=sources, n_classes=len(classes), splits=splits,
                totals={k: sum(c[k] for c in splits.values()) for k in keys},
                **{k: opts[k] for k in ('seconds', 'fps', 'size', 'sample_rate', 'min_seconds', 'min_peak')})
    (Path(out) / 'metadata.json').write_text(json.dumps(meta, indent=2) + '\n')
    return meta


def prepare_vggsound(csv_path, src, out, **kwargs):
    "Clips of vggsound.csv as OUT/<split>/<class>/<id>_<start>.mp4 (AVClipFolder); every split gets every class folder."
    segs, out = read_vggsound_csv(csv_path), Path(out)
    classes = sorted({s.labels[0] for s in segs})
    status, opts = prepare(segs, src, out, lambda s: Path(s.split, _folder_name(s.labels[0]), f"{s.name}.mp4"), **kwargs)
    for split in {s.split for s in segs}:   # empty folders too, so that each split's AVClipFolder has the same classes
        for c in classes: (out / split / _folder_name(c)).mkdir(parents=True, exist_ok=True)
    return _write_metadata(out, 'vggsound', segs, status, opts, classes, dict(csv=str(csv_path)))


def prepare_audioset(csv_paths, classes_csv, src, out, **kwargs):
    "Clips of AudioSet segment CSVs ({split: path}) as OUT/<split>/<id>_<start>.mp4, indexed by OUT/<split>.csv (AVClipCSV)."
    classes, names = read_audioset_classes(classes_csv)
    segs, out = [s for split, p in csv_paths.items() for s in read_audioset_csv(p, split, names)], Path(out)
    status, opts = prepare(segs, src, out, lambda s: Path(s.split, f"{s.name}.mp4"), **kwargs)
    (out / 'classes.txt').write_text(''.join(f"{c}\n" for c in classes))   # official index order, shared by all splits
    for split in csv_paths:
        ok = [s for s, (st, _) in zip(segs, status) if s.split == split and st in ('written', 'existing')]
        with open(out / f"{split}.csv", 'w', newline='') as fh:
            csv.writer(fh).writerows([('path', 'labels'), *((f"{split}/{s.name}.mp4", ';'.join(s.labels)) for s in ok)])
    return _write_metadata(out, 'audioset', segs, status, opts, classes,
                           dict(csv={k: str(v) for k, v in csv_paths.items()}, classes=str(classes_csv)))


def _split_csv(arg):
    "'SPLIT=PATH', or PATH whose split is its stem without '_segments'."
    split, eq, path = arg.partition('=')
    return (split, Path(path)) if eq else (Path(arg).stem.removesuffix('_segments'), Path(arg))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='See data_recipes/README.md.')
    sub = p.add_subparsers(dest='dataset', required=True)
    for name in ('vggsound', 'audioset'):
        q = sub.add_parser(name, help=f"prepare {name} clips")
        if name == 'vggsound': q.add_argument('--csv', required=True, type=Path, help='vggsound.csv')
        else:
            q.add_argument('--csv', required=True, action='append', type=_split_csv, metavar='[SPLIT=]PATH',
                           help='a segments CSV, e.g. eval=eval_segments.csv; repeat for each split')
            q.add_argument('--classes', required=True, type=Path, help='class_labels_indices.csv')
        q.add_argument('--src', required=True, type=Path, help='folder of downloaded videos named <id>.* or <id>_<start>.*')
        q.add_argument('--out', required=True, type=Path, help='output folder')
        q.add_argument('--seconds', type=float, default=10.0, help='clip length (s)')
        q.add_argument('--min-seconds', type=float, default=None, help='skip sources with less than this from the start (default: seconds - 0.5)')
        q.add_argument('--fps', type=float, default=8.0, help='frame rate of the clips')
        q.add_argument('--size', type=int, default=224, help="shorter side of the clips' frames (px); 0 keeps the source's")
        q.add_argument('--sample-rate', type=int, default=16000, help='audio sample rate (Hz); audio is mixed to mono')
        q.add_argument('--min-peak', type=float, default=MIN_PEAK, help='skip sources whose audio peak is below this (silent)')
        q.add_argument('--workers', type=int, default=1, help='processes cutting clips in parallel')
        q.add_argument('--overwrite', action='store_true', help='redo clips already in OUT')
        q.add_argument('--quiet', action='store_true', help='no progress bar')
    a = p.parse_args(argv)
    kw = dict(seconds=a.seconds, fps=a.fps, size=a.size, sample_rate=a.sample_rate, min_seconds=a.min_seconds,
              min_peak=a.min_peak, workers=a.workers, overwrite=a.overwrite, progress=not a.quiet)
    if a.dataset == 'vggsound': meta = prepare_vggsound(a.csv, a.src, a.out, **kw)
    else: meta = prepare_audioset(dict(a.csv), a.classes, a.src, a.out, **kw)
    print(json.dumps(meta['splits']), file=sys.stderr)
    return meta


if __name__ == '__main__': main()
