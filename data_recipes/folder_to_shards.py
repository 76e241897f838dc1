"""Pack an image folder (ImageNet layout) into WebDataset tar shards that `jepa_lab.data.tar_shards` reads map-style.

    ROOT/<split>/<class>/<image>      (splits: the train/val/test folders present, or --splits)
    ROOT/<class>/<image>              (no split folders: ROOT is one split, written to OUT directly)
 -> OUT/<split>/shard-000000.tar ...  samples '<class>/<stem>.<ext>' (the image's bytes) + '<class>/<stem>.cls' (its class index)
    OUT/<split>/shard-*.tar.index.npz the readers' index of each shard (built here, so training starts at once)
    OUT/classes.txt, OUT/<split>/classes.txt   class names, one a line, in index order (sorted folder names over all splits)
    OUT/metadata.json                 counts per split (listed, written, skipped, shards) and the settings
    OUT/skipped.txt                   each skipped file and why

Images are copied byte for byte unless --size is given (then the shorter side is resized to SIZE and the image is
written as JPEG at --quality). The order is shuffled with --seed, so the shards also suit streaming readers (webdataset's
own pipeline) that shuffle only within a buffer. A file that fails --check ('verify': PIL's structural check; 'decode':
a full decode; 'none') is skipped and listed. Existing shards in OUT are never mixed with new ones: pass --overwrite.

    python data_recipes/folder_to_shards.py ~/data/imagenet data/imagenet-shards --maxsize 1e9
    train(RunConfig(dataset='tar_shards', dataset_args=dict(root='data/imagenet-shards', size=224), ...))
"""
import argparse, io, json, random, re, sys
from pathlib import Path

from PIL import Image

from jepa_lab.data import ImageFolder, index_shard

SPLITS = ('train', 'val', 'test')


def find_splits(root: Path, splits=None) -> dict:
    "{split: folder}: the given `splits`, else the train/val/test folders of `root`, else `root` itself as split ''."
    if splits: return {s: root / s for s in splits}
    found = {s: root / s for s in SPLITS if (root / s).is_dir()}
    return found or {'': root}


def encode(path: Path, check: str, size: int | None, quality: int) -> tuple[str, bytes]:
    "(extension, bytes) of the image at `path` as it goes into a shard; ValueError when it fails `check` or cannot be re-encoded."
    data = path.read_bytes()
    try:
        if check != 'none' or size:
            with Image.open(io.BytesIO(data)) as im:
                if check == 'verify' and not size: im.verify()
                else: im.load()
                if size:
                    im = im.convert('RGB')
                    scale = size / min(im.size)
                    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BICUBIC)
                    out = io.BytesIO(); im.save(out, 'JPEG', quality=quality)
                    return 'jpg', out.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode: {e}") from e
    return path.suffix[1:].lower(), data


def key_of(cls: str, stem: str, seen: set) -> str:
    "A WebDataset key '<class>/<stem>' with dots and spaces made '_' (a key ends at its first dot), unique among `seen`."
    key = re.sub(r'[.\s]', '_', f"{cls}/{stem}")
    while key in seen: key += '_'
    seen.add(key)
    return key


def write_split(folder: Path, out: Path, classes: list, args, log) -> dict:
    "Write the shards of one split folder; its counts."
    import webdataset as wds
    ds = ImageFolder(folder, on_error='raise')
    label = [classes.index(c) for c in ds.classes]
    order = list(range(len(ds)))
    random.Random(args.seed).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    counts, seen = dict(listed=len(ds), written=0, skipped=0), set()
    with wds.ShardWriter(str(out / 'shard-%06d.tar'), maxcount=args.maxcount, maxsize=args.maxsize, verbose=0) as w:
        for n, i in enumerate(order):
            path, y = ds.path(i), label[int(ds.labels[i])]
            try: ext, data = encode(path, args.check, args.size, args.quality)
            except (OSError, ValueError) as e:
                counts['skipped'] += 1; log.write(f"{path}\t{e}\n"); continue
            w.write({'__key__': key_of(ds.classes[int(ds.labels[i])], path.stem, seen), ext: data, 'cls': y})
            counts['written'] += 1
            if not args.quiet and (n + 1) % 10000 == 0: print(f"{out}: {n + 1} of {len(ds)} images", file=sys.stderr)
    shards = sorted(out.glob('shard-*.tar'))
    for s in shards: index_shard(s, check='none' if args.check == 'none' else 'verify')
    (out / 'classes.txt').write_text('\n'.join(classes) + '\n')
    return dict(counts, shards=len(shards))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root', type=Path, help="the image folder: ROOT/<split>/<class>/<image> or ROOT/<class>/<image>")
    p.add_argument('out', type=Path, help="where the shards go")
    p.add_argument('--splits', nargs='+', help="split folders to convert (default: the train/val/test folders of ROOT, or ROOT itself)")
    p.add_argument('--maxcount', type=int, default=10000, help="samples per shard at most (default 10000)")
    p.add_argument('--maxsize', type=float, default=1e9, help="bytes per shard at most (default 1e9)")
    p.add_argument('--size', type=int, help="resize the shorter side to SIZE and write JPEG (default: copy the files as they are)")
    p.add_argument('--quality', type=int, default=90, help="JPEG quality with --size (default 90)")
    p.add_argument('--check', choices=('none', 'verify', 'decode'), default='verify', help="what a file must pass to be written (default verify)")
    p.add_argument('--seed', type=int, default=0, help="seed of the shuffled order (default 0)")
    p.add_argument('--overwrite', action='store_true', help="remove shards already in OUT first")
    p.add_argument('--quiet', action='store_true', help="no progress lines")
    args = p.parse_args(argv)
    if not args.root.is_dir(): p.error(f"{args.root} is not a folder")
    splits = find_splits(args.root, args.splits)
    if missing := [str(f) for f in splits.values() if not f.is_dir()]: p.error(f"split folders not found: {', '.join(missing)}")
    old = [s for split in splits for s in (args.out / split).glob('shard-*.tar*')]
    if old and not args.overwrite: p.error(f"{args.out} already holds {len(old)} shard files; pass --overwrite to replace them")
    for s in old: s.unlink()
    classes = sorted({c for f in splits.values() for c in ImageFolder(f).classes})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / 'skipped.txt', 'w') as log:
        counts = {split or '.': write_split(folder, args.out / split, classes, args, log) for split, folder in splits.items()}
    (args.out / 'classes.txt').write_text('\n'.join(classes) + '\n')
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (args.out / 'metadata.json').write_text(json.dumps(dict(classes=len(classes), splits=counts, settings=settings), indent=1))
    if not args.quiet:
        for split, c in counts.items(): print(f"{args.out / split}: {c['written']} of {c['listed']} images in {c['shards']} shards, {c['skipped']} skipped")
    return counts


if __name__ == '__main__': main()
