"""The trainer across modules: a run killed with SIGKILL resumes to the same metrics; bad configs fail clearly."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from conftest import tiny_config, timeless
from jepa_lab.train import RunConfig, train
from jepa_lab.files import read_metrics, load_checkpoint, run_status

def test_sigkilled_run_resumes_to_the_uninterrupted_metrics(tmp_path):
    ref = train(tiny_config(tmp_path / 'ref', steps=40, ckpt_every=5))
    cfg = tiny_config(tmp_path / 'killed', steps=40, ckpt_every=5)
    Path(tmp_path / 'cfg.json').write_text(json.dumps(cfg.to_dict()))
    code = "import json,sys; from jepa_lab.train import RunConfig, train; train(RunConfig.from_dict(json.load(open(sys.argv[1]))))"
    p = subprocess.Popen([sys.executable, '-c', code, str(tmp_path / 'cfg.json')])
    ckpt = tmp_path / 'killed' / 'checkpoints' / 'last.pt'
    deadline = time.time() + 120
    while not ckpt.exists() and p.poll() is None and time.time() < deadline: time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait()
    killed_at = load_checkpoint(ckpt)['step']
    assert 5 <= killed_at < 40, f"the run was not interrupted mid-way (checkpoint at step {killed_at})"
    assert run_status(tmp_path / 'killed') == 'interrupted'             # it said 'running', and nobody holds its lock
    summary = train(cfg)
    assert summary['status'] == 'finished' and summary['steps'] == 40
    assert timeless(read_metrics(tmp_path / 'killed')) == timeless(read_metrics(tmp_path / 'ref'))
    a, b = load_checkpoint(tmp_path / 'ref' / 'checkpoints' / 'last.pt'), load_checkpoint(ckpt)
    assert all(torch.equal(a['method'][k], b['method'][k]) for k in a['method'])

@pytest.mark.parametrize('kw, msg', [
    (dict(method='byol'), "unknown method 'byol'; known: av_finetune, av_jepa, "),
    (dict(method_args=dict(lamda=0.1)), "no parameter(s) ['lamda']"),
    (dict(steps=0), "RunConfig.steps must be >=1, got 0"),
    (dict(precision='fp16'), "RunConfig.precision: expected one of 'auto', 'bf16', 'fp32', got 'fp16'"),
])
def test_bad_config_is_named(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=__import__('re').escape(msg)): RunConfig(**kw)

def test_unknown_dataset_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"): train(tiny_config(tmp_path, dataset='cifar', dataset_args={}))

def test_dataset_smaller_than_a_batch(tmp_path):
    with pytest.raises(ValueError, match="smaller than one global batch"): train(tiny_config(tmp_path, batch_size=4096))

def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="no field"): RunConfig.from_dict({'stepz': 3})

def test_wrong_view_shapes_are_named():
    from jepa_lab.methods import create_method
    from conftest import tiny_method_args
    m = create_method('lejepa', **tiny_method_args())
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"): m({'global': torch.randn(4, 2, 1, 16, 16)}, 0)
    with pytest.raises(ValueError, match="at least 2"): m({'global': torch.randn(1, 2, 3, 16, 16)}, 0)

def test_two_process_ddp_training(tmp_path):
    """torchrun with 2 gloo processes: both ranks train in lockstep, rank 0 alone writes the run folder."""
    import dataclasses
    cfg = tiny_config(tmp_path / 'run', steps=4, ckpt_every=2, batch_size=16)
    (tmp_path / 'cfg.json').write_text(json.dumps(dataclasses.asdict(cfg)))
    worker = tmp_path / 'worker.py'
    worker.write_text(
        "import json, sys, torch, torch.distributed as dist\n"
        "import jepa_lab.train as T\n"
        "cfg = T.RunConfig.from_dict(json.load(open(sys.argv[1])))\n"
        "method = T.build_method(cfg)\n"
        "T.train(cfg, method)\n"
        "flat = torch.cat([p.detach().flatten() for p in method.parameters()])\n"
        "gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]\n"
        "dist.all_gather(gathered, flat)\n"
        "if dist.get_rank() == 0: torch.save(torch.stack(gathered), sys.argv[2])\n")
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(worker),
                        str(tmp_path / 'cfg.json'), str(tmp_path / 'params.pt')],
                       capture_output=True, text=True, timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-4000:]
    params = torch.load(tmp_path / 'params.pt')
    assert torch.equal(params[0], params[1])
    rows = read_metrics(tmp_path / 'run')
    assert [r['step'] for r in rows] == [2, 4]
    assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['status'] == 'finished'

def test_bf16_autocast_path_runs_on_cpu(tmp_path):
    s = train(tiny_config(tmp_path, steps=2, precision='bf16'))
    assert s['status'] == 'finished' and all(map(lambda v: v == v, [s['final']['loss'], s['final']['sigreg']]))

TINY_AV = dict(encoder='vit_nano', frames=4, img_size=32, tubelet=(2, 8, 8), n_mels=32, mel_patch=8, crop_s=1.5,
               proj_hidden=64, proj_dim=16, n_slices=64)

def test_av_jepa_trains_and_resumes_exactly_through_the_shared_trainer(tmp_path):
    from jepa_lab.train import build_method
    cfg = lambda d: RunConfig(method='av_jepa', method_args=TINY_AV, dataset='av_clips', dataset_args=dict(n=64), steps=6,
                              batch_size=16, log_every=2, ckpt_every=3, progress=False, out_dir=str(d))
    ref = train(cfg(tmp_path / 'ref'))
    assert ref['status'] == 'finished' and ref['final']['invariance'] > 0
    m = build_method(cfg(tmp_path / 'cut'))
    calls = [0]
    def interrupt(module, inp, out):
        calls[0] += 1
        if calls[0] > 4: raise KeyboardInterrupt           # one encoder call per step: interrupted in step 5
    m.encoder.blocks[0].register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt): train(cfg(tmp_path / 'cut'), m)
    assert load_checkpoint(tmp_path / 'cut' / 'checkpoints' / 'last.pt')['step'] == 3
    train(cfg(tmp_path / 'cut'))
    assert timeless(read_metrics(tmp_path / 'cut')) == timeless(read_metrics(tmp_path / 'ref'))

def test_av_finetune_loads_the_pretrained_backbone_trains_it_at_its_lr_fraction_and_resumes_exactly(tmp_path):
    from jepa_lab.train import build_method
    from jepa_lab.methods import TABLE4_RUN
    pre = RunConfig(method='av_jepa', method_args=TINY_AV, dataset='av_clips', dataset_args=dict(n=32), steps=2, batch_size=16,
                    progress=False, out_dir=str(tmp_path / 'pre'))
    train(pre)
    args = dict(pretrained=pre.out_dir, n_classes=6, head='attentive', head_heads=2)
    cfg = lambda d: RunConfig(**TABLE4_RUN, method='av_finetune', method_args=args, dataset='av_clips', dataset_args=dict(n=64),
                              steps=6, batch_size=16, log_every=2, ckpt_every=3, progress=False, out_dir=str(d))
    ref = train(cfg(tmp_path / 'ref'))
    rows = read_metrics(tmp_path / 'ref')
    assert ref['status'] == 'finished' and 'cls_loss' in rows[-1] and not any('probe_loss' in r for r in rows)   # no online probes
    ck = load_checkpoint(tmp_path / 'ref' / 'checkpoints' / 'last.pt')
    assert {g['lr_scale'] for g in ck['opt']['param_groups']} == {0.05, 1.0}
    backbone = load_checkpoint(tmp_path / 'pre' / 'checkpoints' / 'last.pt')['method']
    assert torch.equal(build_method(cfg(tmp_path / 'x')).encoder.state_dict()['blocks.0.attn.qkv.weight'], backbone['encoder.blocks.0.attn.qkv.weight'])
    m = build_method(cfg(tmp_path / 'cut'))
    calls = [0]
    def interrupt(module, inp, out):
        calls[0] += 1
        if calls[0] > 4: raise KeyboardInterrupt
    m.encoder.blocks[0].register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt): train(cfg(tmp_path / 'cut'), m)
    train(cfg(tmp_path / 'cut'))
    assert timeless(read_metrics(tmp_path / 'cut')) == timeless(read_metrics(tmp_path / 'ref'))
