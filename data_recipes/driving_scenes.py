"""Export Waymo, nuScenes and FLIR frames for `jepa_lab.scenes.SceneFrames` (a labels JSON + image files per frame).

The library never downloads anything and never imports a dataset SDK; this script does, lazily, only for the
dataset you export. Each camera frame becomes OUT/<split>/<name>.json (K, objects) beside <name>.jpg (camera),
<name>_depth.png (LiDAR z-depth, 16-bit, metres x 256) or <name>_thermal.png, and OUT/metadata.json records the
source, the classes, the settings and the counts per split.

    waymo     Waymo Open Dataset v1 TFRecords (needs tensorflow and waymo-open-dataset). The synchronized 10 Hz stream is
              subsampled to 2 Hz, every fifth frame (as in Le MuMo JEPA), per segment; the front camera's JPEG becomes
              rgb, the top and side LiDAR points projected into it become the sparse depth (nearest return per pixel),
              3D laser labels in front of the camera become objects (vehicle -> car, pedestrian, cyclist).
              metadata.json: per split, the number of segments, frames read and frames written, and per segment.
    nuscenes  nuScenes keyframes (already 2 Hz; needs nuscenes-devkit): CAM_FRONT + LIDAR_TOP projected, boxes of
              car / pedestrian / bicycle in the camera frame. The split's scenes come from the devkit's official lists.
    flir      FLIR ADAS RGB-thermal pairs with COCO boxes (no SDK): a thermal image and its RGB partner (same stem,
              or a JSON map {rgb file: thermal file}, like rgb_to_thermal_vid_map.json) resized to one size, boxes
              from the thermal COCO file scaled to it (read with `jepa_lab.scenes.FlirPairs`). Unpaired or
              unreadable images are skipped and counted.

    python data_recipes/driving_scenes.py waymo --tfrecords 'waymo/training/*.tfrecord' --split train --out data/waymo
    python data_recipes/driving_scenes.py nuscenes --dataroot nuscenes --version v1.0-trainval --split val --out data/nuscenes
    python data_recipes/driving_scenes.py flir --rgb FLIR/images_rgb_val/data --thermal FLIR/images_thermal_val/data \\
        --coco FLIR/images_thermal_val/coco.json --split test --size 512 640 --out data/flir

Read with `SceneFrames('data/waymo', 'train')`; `MultiModalViews('depth')` or `MultiModalViews('thermal')` makes the views.
"""
import argparse, glob, json, sys
from pathlib import Path

import numpy as np

from jepa_lab.data import OBJECT_CLASSES, FlirPairs, box_corners, boxes_2d, lidar_depth, write_frame

WAYMO_TYPES = {1: 'car', 2: 'pedestrian', 4: 'cyclist'}          # label.Type: VEHICLE, PEDESTRIAN, (SIGN), CYCLIST
NUSCENES_TYPES = {'vehicle.car': 'car', 'human.pedestrian': 'pedestrian', 'vehicle.bicycle': 'cyclist'}


def _require(module, pip_name):
    "Import an optional SDK, or fail saying what to install."
    import importlib
    try: return importlib.import_module(module)
    except ImportError as e: raise ImportError(f"this recipe needs {module}: pip install {pip_name}") from e


def update_metadata(out, split, counts, **settings):
    "Merge the settings and this split's counts into OUT/metadata.json; returns the whole record."
    path = Path(out) / 'metadata.json'
    meta = json.loads(path.read_text()) if path.is_file() else {}
    meta.update(settings)
    meta.setdefault('splits', {})[split] = counts
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1))
    return meta


def export_segments(segments, out, split, convert=lambda f: f, every=5, native_hz=10.0, source='waymo', classes=OBJECT_CLASSES,
                    rgb_format='jpg'):
    "Write frames 0, every, 2*every, ... of each (name, frames) segment as OUT/<split>/<name>_<frame:06d>.json + images; counts to metadata."
    per_segment = {}
    for name, frames in segments:
        seen = written = 0
        for k, frame in enumerate(frames):
            seen += 1
            if k % every: continue
            write_frame(Path(out) / split, f"{name}_{k:06d}", convert(frame), rgb_format=rgb_format, classes=classes)
            written += 1
        per_segment[name] = dict(frames=seen, written=written)
    counts = dict(segments=len(per_segment), frames=sum(c['frames'] for c in per_segment.values()),
                  written=sum(c['written'] for c in per_segment.values()), per_segment=per_segment)
    return update_metadata(out, split, counts, source=source, classes=list(classes), native_hz=native_hz, every=every,
                           hz=native_hz / every)


def _yaw_from_heading(direction):
    "Camera-frame yaw (about +y, KITTI convention) of a heading direction (3,) in the camera frame."
    return float(np.arctan2(-direction[2], direction[0]))


def objects_from_boxes(boxes, K, height, width):
    "Objects dict from (class name, centre (3,), (l,h,w), yaw) tuples in the camera frame, kept if in front and in view."
    rows = []
    for name, c, lhw, yaw in boxes:
        c, lhw, yaw = np.array([c], float), np.array([lhw], float), np.array([yaw], float)
        if name not in OBJECT_CLASSES or box_corners(c, lhw, yaw)[0, :, 2].min() <= 0.1: continue   # wholly in front
        box = boxes_2d(np.asarray(K, float), c, lhw, yaw, height, width)[0]
        if box[2] <= box[0] or box[3] <= box[1]: continue
        rows.append((OBJECT_CLASSES.index(name), c[0], lhw[0], yaw[0], box))
    cols = list(zip(*rows)) or [(), np.zeros((0, 3)), np.zeros((0, 3)), (), np.zeros((0, 4))]
    return dict(labels=np.array(cols[0], np.int64), centers=np.array(cols[1], np.float32).reshape(-1, 3),
                sizes=np.array(cols[2], np.float32).reshape(-1, 3), yaw=np.array(cols[3], np.float32),
                boxes2d=np.array(cols[4], np.float32).reshape(-1, 4))


# ---------------------------------------------------------------- Waymo (untested here: needs the SDK and real records)
def waymo_segments(tfrecords):
    "(segment name, lazy iterator of Frame protos) for each TFRecord file."
    tf = _require('tensorflow', 'tensorflow')
    pb = _require('waymo_open_dataset.dataset_pb2', 'waymo-open-dataset-tf-2-12-0')
    def frames(path):
        for data in tf.data.TFRecordDataset(str(path), compression_type=''):
            frame = pb.Frame()
            frame.ParseFromString(bytearray(data.numpy()))
            yield frame
    for path in tfrecords: yield Path(path).stem, frames(path)


def waymo_item(frame, camera='FRONT'):
    "A scene dict from one Waymo Frame: camera rgb, LiDAR depth, K, objects in front of the camera."
    tf = _require('tensorflow', 'tensorflow')
    pb = _require('waymo_open_dataset.dataset_pb2', 'waymo-open-dataset-tf-2-12-0')
    frame_utils = _require('waymo_open_dataset.utils.frame_utils', 'waymo-open-dataset-tf-2-12-0')
    cam = pb.CameraName.Name.Value(camera)
    rgb = tf.io.decode_jpeg(next(im.image for im in frame.images if im.name == cam)).numpy().transpose(2, 0, 1)
    calib = next(c for c in frame.context.camera_calibrations if c.name == cam)
    fu, fv, cu, cv = calib.intrinsic[:4]
    K = np.array([[fu, 0, cu], [0, fv, cv], [0, 0, 1]], np.float32)
    parsed = frame_utils.parse_range_image_and_camera_projection(frame)   # 3 or 4 values depending on the SDK version
    points, _ = frame_utils.convert_range_image_to_point_cloud(frame, parsed[0], parsed[1], parsed[-1])
    to_cam = np.linalg.inv(np.array(calib.extrinsic.transform).reshape(4, 4))     # vehicle -> Waymo camera (x fwd, y left, z up)
    def cam_frame(p, shift=True):
        "Vehicle-frame points (or, with shift=False, directions) (M,3) in our camera frame (x right, y down, z forward)."
        q = np.asarray(p, float) @ to_cam[:3, :3].T + (to_cam[:3, 3] if shift else 0)
        return np.stack([-q[:, 1], -q[:, 2], q[:, 0]], 1)
    pts_cam = cam_frame(np.concatenate(points))
    boxes = []
    for label in frame.laser_labels:
        if label.type not in WAYMO_TYPES: continue
        b = label.box
        heading = cam_frame([[np.cos(b.heading), np.sin(b.heading), 0.0]], shift=False)[0]
        boxes.append((WAYMO_TYPES[label.type], cam_frame([[b.center_x, b.center_y, b.center_z]])[0], (b.length, b.height, b.width),
                      _yaw_from_heading(heading)))
    H, W = rgb.shape[1:]
    return dict(rgb=rgb, depth=lidar_depth(pts_cam, K, H, W), K=K, objects=objects_from_boxes(boxes, K, H, W))


# ---------------------------------------------------------------- nuScenes (untested here: needs the devkit and real data)
def nuscenes_segments(dataroot, version, split):
    "(nusc, [(scene name, lazy iterator of sample records)]) for the scenes of an official split."
    NuScenes = _require('nuscenes.nuscenes', 'nuscenes-devkit').NuScenes
    names = set(_require('nuscenes.utils.splits', 'nuscenes-devkit').create_splits_scenes()[split])
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    def samples(scene):
        token = scene['first_sample_token']
        while token:
            s = nusc.get('sample', token)
            yield s
            token = s['next']
    return nusc, [(sc['name'], samples(sc)) for sc in nusc.scene if sc['name'] in names]


def nuscenes_item(nusc, sample, camera='CAM_FRONT'):
    "A scene dict from one nuScenes keyframe: camera rgb, LIDAR_TOP depth, K, boxes in the camera frame."
    from PIL import Image
    cam_token = sample['data'][camera]
    path, boxes, K = nusc.get_sample_data(cam_token)
    rgb = np.asarray(Image.open(path).convert('RGB')).transpose(2, 0, 1)
    uv, z, _ = nusc.explorer.map_pointcloud_to_image(sample['data']['LIDAR_TOP'], cam_token)
    pts = (np.linalg.inv(K) @ np.vstack([uv[:2], np.ones(uv.shape[1])]) * z).T
    objs = []
    for b in boxes:
        name = next((v for k, v in NUSCENES_TYPES.items() if b.name.startswith(k)), None)
        if name is None: continue
        w, l, h = b.wlh
        objs.append((name, np.asarray(b.center), (l, h, w), _yaw_from_heading(b.orientation.rotation_matrix[:, 0])))
    H, W = rgb.shape[1:]
    return dict(rgb=rgb, depth=lidar_depth(pts, K, H, W), K=np.asarray(K, np.float32), objects=objects_from_boxes(objs, K, H, W))


# ---------------------------------------------------------------- FLIR
def export_flir(rgb_dir, thermal_dir, coco, out, split, pairs=None, size=None):
    "RGB-thermal pairs with the thermal COCO boxes as OUT/<split>/<thermal stem>.json + images; unpaired/unreadable counted in metadata."
    flir = FlirPairs(rgb_dir, thermal_dir, coco, pairs, size)
    counts = dict(images=flir.n_images, written=0, unpaired=flir.unpaired, unreadable=0, boxes=0)
    for i, (thermal, *_) in enumerate(flir.frames):
        try: item = flir[i]
        except ValueError:
            counts['unreadable'] += 1
            continue
        write_frame(Path(out) / split, Path(thermal).stem, item, rgb_format='jpg', classes=flir.classes)
        counts['written'] += 1
        counts['boxes'] += len(item['objects']['labels'])
    return update_metadata(out, split, counts, source='flir', classes=flir.classes, size=list(size) if size else None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest='dataset', required=True)
    w = sub.add_parser('waymo'); w.add_argument('--tfrecords', required=True, help='glob of .tfrecord files')
    w.add_argument('--camera', default='FRONT'); w.add_argument('--every', type=int, default=5)
    n = sub.add_parser('nuscenes'); n.add_argument('--dataroot', required=True); n.add_argument('--version', default='v1.0-trainval')
    n.add_argument('--camera', default='CAM_FRONT')
    f = sub.add_parser('flir'); f.add_argument('--rgb', required=True); f.add_argument('--thermal', required=True)
    f.add_argument('--coco', required=True); f.add_argument('--pairs'); f.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'))
    for s in (w, n, f): s.add_argument('--split', required=True); s.add_argument('--out', required=True)
    a = p.parse_args(argv)
    if a.dataset == 'waymo':
        meta = export_segments(waymo_segments(sorted(glob.glob(a.tfrecords))), a.out, a.split,
                               lambda fr: waymo_item(fr, a.camera), every=a.every, native_hz=10.0, source='waymo')
    elif a.dataset == 'nuscenes':
        nusc, segments = nuscenes_segments(a.dataroot, a.version, a.split)
        meta = export_segments(segments, a.out, a.split, lambda s: nuscenes_item(nusc, s, a.camera), every=1, native_hz=2.0,
                               source='nuscenes')
    else:
        meta = export_flir(a.rgb, a.thermal, a.coco, a.out, a.split, a.pairs, a.size)
    print(json.dumps({k: v for k, v in meta['splits'][a.split].items() if k != 'per_segment'}))


if __name__ == '__main__':
    sys.exit(main())
