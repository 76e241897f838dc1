"""M3-JEPA through the shared trainer: alternating directions step by step, caption retrieval through the read-out, the cache."""
import torch
from jepa_lab.train import RunConfig, train
from jepa_lab.files import read_metrics
from jepa_lab.eval import load_method, caption_retrieval
from jepa_lab.data import make_dataset
from jepa_lab.methods import M3JEPAConfig

def m3_config(out_dir, **kw):
    args = {**M3JEPAConfig.tiny().to_dict(), **kw.pop('method_args', {})}
    return RunConfig(method='m3_jepa', method_args=args, dataset='captioned_shapes', dataset_args=dict(size=32, n=32), batch_size=8,
                     log_every=1, ckpt_every=2, progress=False, out_dir=str(out_dir), **{'steps': 4, **kw})

def test_agd_alternates_directions_in_the_shared_trainer_and_the_run_reads_out(tmp_path):
    train(m3_config(tmp_path / 'agd'))
    rows = read_metrics(tmp_path / 'agd')
    assert [('contrastive_image_to_text' in r, 'contrastive_text_to_image' in r) for r in rows] == [(True, False), (False, True)] * 2
    train(m3_config(tmp_path / 'joint', method_args=dict(schedule='joint')))
    assert all('contrastive_image_to_text' in r and 'contrastive_text_to_image' in r for r in read_metrics(tmp_path / 'joint'))
    m, _ = load_method(tmp_path / 'agd')
    r = caption_retrieval(m, make_dataset('captioned_shapes', 'test', n=8, size=32))
    assert 0 <= r['image→text']['R@1'] <= 1 and r['chance_r1'] == 1 / 8

def test_several_tasks_take_turns_in_one_model_through_the_trainer(tmp_path):
    train(m3_config(tmp_path / 'multi', steps=6, method_args=dict(task=('image_text', 'image_label', 'vqa'))))
    firsts = [next(k for k in r if k.startswith('contrastive_')) for r in read_metrics(tmp_path / 'multi')]
    assert firsts == [f'contrastive_{d}' for d in ('image_to_text', 'text_to_image', 'image_to_label', 'label_to_image',
                                                    'image_question_to_answer', 'answer_to_image_question')]
    m, _ = load_method(tmp_path / 'multi')
    assert m.tasks == ('image_text', 'image_label', 'vqa')        # the tuple survives config.json's list

def test_cached_and_uncached_training_agree(tmp_path):
    a = train(m3_config(tmp_path / 'cached'))
    b = train(m3_config(tmp_path / 'full', method_args=dict(cache='none')))
    ra, rb = read_metrics(tmp_path / 'cached'), read_metrics(tmp_path / 'full')
    assert all(abs(x['loss'] - y['loss']) < 1e-4 for x, y in zip(ra, rb)), (ra, rb)

def test_experiment_notebook_writes_its_table(tmp_path):
    import json
    from test_cli import ROOT, jepa_lab
    args = ['run', str(ROOT / 'nbs' / 'experiments' / 'm3_table.ipynb'), '-p', 'steps', '2', '-p', 'batch_size', '8', '-p', 'n_train', '16',
            '-p', 'n_test', '8', '-p', 'n_train_av', '8', '-p', 'n_test_av', '6', '-p', 'variants', "{'M3-JEPA': {}, 'w/o AGD (joint)': {'schedule': 'joint'}}", '-p', 'threads', '1',
            '-p', 'base', repr({**M3JEPAConfig.tiny().to_dict(), 'n_experts': 4, 'top_k': 2}), '--out', str(tmp_path)]
    r = jepa_lab(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads((tmp_path / 'results.json').read_text())
    assert [x['variant'] for x in rows] == ['M3-JEPA', 'w/o AGD (joint)', 'untrained (frozen encoders, random predictor)']
    assert all(0 <= x['i2t_R@1'] <= 1 and x['chance_r1'] == 1 / 8 for x in rows) and (tmp_path / 'figures' / 'm3_losses.png').exists()
    tasks = json.loads((tmp_path / 'tasks.json').read_text())
    assert {(t['task'], t['metric']) for t in tasks} >= {('image_label', 'f1 (macro)'), ('vqa', 'accuracy'), ('audio_text', 'audio→text R@1')}
    assert all(0 <= t['trained'] <= 1 and 0 <= t['untrained'] <= 1 for t in tasks)
    assert next(t for t in tasks if t['metric'] == 'audio→text R@1')['chance'] == 1 / 6
    multi = json.loads((tmp_path / 'multi_task.json').read_text())
    assert [t['task'] for t in multi[:8]] == ['image_text'] * 4 + ['image_label'] * 4 and {t['task'] for t in multi[8:]} == {'vqa'}
    assert all(0 <= t['shared'] <= 1 and t['own'] is not None for t in multi)
    assert json.loads((tmp_path / 'multi_task' / 'summary.json').read_text())['steps'] == 6
    assert not any('frozen_fingerprint' not in k and k.startswith('text.') and 'lora_' not in k
                   for k in torch.load(tmp_path / 'task_vqa' / 'checkpoints' / 'last.pt', weights_only=True)['method'])

def test_analysis_notebook_draws_each_figure_once_from_its_own_run(tmp_path):
    import json
    from test_cli import ROOT, jepa_lab
    args = ['run', str(ROOT / 'nbs' / 'viz' / 'm3_analysis.ipynb'), '-p', 'steps', '2', '-p', 'batch_size', '8', '-p', 'n_train', '16',
            '-p', 'n_eval', '12', '-p', 'n_examples', '2', '-p', 'reducer', 'pca', '-p', 'threads', '1', '--out', str(tmp_path)]
    r = jepa_lab(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / 'figures').iterdir()) == ['alignment.png', 'retrieval_examples.png', 'routing.png']
    cells = json.loads((tmp_path / 'm3_analysis.ipynb').read_text())['cells']
    images = [o for c in cells if c['cell_type'] == 'code' for o in c['outputs'] if 'image/png' in o.get('data', {})]
    assert len(images) == 3, len(images)
    assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['steps'] == 2
