"""`jepa-lab run` / papermill on the experiment notebooks with tiny parameters, and its errors."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, tiny_method_args

PRETRAIN = ROOT / 'nbs' / 'experiments' / 'pretrain.ipynb'
TINY = ['-p', 'steps', '4', '-p', 'batch_size', '16', '-p', 'dataset', 'digits', '-p', 'dataset_args', "{'size': 16}",
        '-p', 'encoder', 'vit_nano', '-p', 'global_size', '16', '-p', 'local_size', '8', '-p', 'n_local', '2',
        '-p', 'proj_hidden', '32', '-p', 'proj_dim', '8', '-p', 'n_slices', '32']

def jepa_lab(*args):
    """`jepa-lab ARGS` through its entry point `main`, from the source checkout: its exit status, stdout and stderr.
    In this process: a fresh interpreter spent ~5 s a call importing jepa_lab again; the notebooks run in their own kernels all the same."""
    import contextlib, io, os
    from jepa_lab.cli import main
    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: code = main([str(a) for a in args])
            except SystemExit as e: code = e.code if isinstance(e.code, int) else (e.code is not None)   # argparse's errors
    finally: os.chdir(cwd)
    return subprocess.CompletedProcess(args, int(code), out.getvalue(), err.getvalue())

def test_run_pretrain_notebook_writes_a_run_folder(tmp_path):
    r = jepa_lab('run', str(PRETRAIN), *TINY, '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / 'summary.json').read_text())
    assert s['status'] == 'finished' and s['steps'] == 4
    assert set(s['frozen_eval']) == {'trained', 'random_init'} and 0 <= s['frozen_eval']['trained']['linear_acc'] <= 1
    assert (tmp_path / 'pretrain.ipynb').exists() and (tmp_path / 'checkpoints' / 'last.pt').exists()
    assert {p.name for p in (tmp_path / 'figures').iterdir()} >= {'report.png', 'loss_decomposition.png', 'embedding_std.png', 'probe_accuracy.png'}
    cells = json.loads((tmp_path / 'pretrain.ipynb').read_text())['cells']
    images = [o for c in cells if c['cell_type'] == 'code' for o in c['outputs'] if 'image/png' in o.get('data', {})]
    assert len(images) == 1, len(images)                                     # the report figure, once; the parts go to files only
    rows = json.loads((tmp_path / 'results.json').read_text())               # the frozen evaluation as a table, printed at the end
    assert [row['encoder'] for row in rows] == ['trained', 'random init'] and rows[0]['linear_acc'] == s['frozen_eval']['trained']['linear_acc']
    assert '\nresults.md:\n| encoder | linear probe acc | k-NN acc |' in r.stdout, r.stdout[-2000:]
    r = jepa_lab('runs', str(tmp_path))                                      # the run as a row of `jepa-lab runs`
    assert r.returncode == 0 and r.stdout.split('\n')[1].split()[1:5] == ['finished', 'lejepa', 'digits', '4'], r.stdout
    assert 'eval.trained.linear_acc' in r.stdout and 'final.rankme' in r.stdout
    before = {p: p.read_bytes() for p in tmp_path.rglob('*') if p.is_file()}
    r = jepa_lab('run', str(PRETRAIN), *TINY, '--out', str(tmp_path))        # run again: a no-op that keeps the results
    assert r.returncode == 0 and 'already finished with these parameters' in r.stdout
    r = jepa_lab('run', str(PRETRAIN), *TINY, '-p', 'lam', '0.1', '--out', str(tmp_path))   # other parameters: refused, untouched
    assert r.returncode == 1 and '(lam: 0.05 -> 0.1)' in r.stderr and '--force' in r.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob('*') if p.is_file()} == before

def test_unknown_parameter_is_named(tmp_path):
    r = jepa_lab('run', str(PRETRAIN), '-p', 'lamda', '0.1', '--out', str(tmp_path))
    assert r.returncode == 1 and "no parameter(s) lamda" in r.stderr and "lam" in r.stderr

def test_failing_cell_is_named(tmp_path):
    r = jepa_lab('run', str(PRETRAIN), '-p', 'method', 'byol', '--out', str(tmp_path))
    assert r.returncode == 1 and "failed in cell" in r.stderr and "unknown method 'byol'" in r.stderr and "RunConfig(" in r.stderr
    assert (tmp_path / 'pretrain.failed.ipynb').exists() and not (tmp_path / 'report.html').exists()     # a report only of a finished run
    assert not (tmp_path / 'pretrain.ipynb').exists()

def test_missing_notebook_and_no_parameters(tmp_path):
    r = jepa_lab('run', str(tmp_path / 'nope.ipynb'), '--out', str(tmp_path))
    assert r.returncode == 1 and "notebook not found" in r.stderr
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])
    nbformat.write(nb, tmp_path / 'plain.ipynb')
    r = jepa_lab('run', str(tmp_path / 'plain.ipynb'), '-p', 'x', '2', '--out', str(tmp_path))
    assert r.returncode == 1 and "no cell tagged 'parameters'" in r.stderr

def test_run_writes_a_self_contained_report(tmp_path):
    "report.html beside the executed notebook carries the printed output and the drawn figure itself, and loads nothing when opened."
    import nbformat
    from jepa_lab.report import external_resources
    cells = [nbformat.v4.new_code_cell('n = 3', metadata={'tags': ['parameters']}),
             nbformat.v4.new_code_cell("print(f'squares: {[i * i for i in range(n)]}')"),
             nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot(range(n));")]
    kernel = {'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), tmp_path / 'tiny.ipynb')
    r = jepa_lab('run', str(tmp_path / 'tiny.ipynb'), '-p', 'n', '4', '--out', str(tmp_path / 'out'))
    assert r.returncode == 0, r.stderr[-3000:]
    html = (tmp_path / 'out' / 'report.html').read_text()
    assert 'squares: [0, 1, 4, 9]' in html and html.count('src="data:image/png;base64,') == 1
    assert external_resources(html) == []

def test_missing_value_is_an_argparse_error(tmp_path):
    r = jepa_lab('run', str(PRETRAIN), '-p', 'lam', '--out', str(tmp_path))
    assert r.returncode == 2 and "expected 2 arguments" in r.stderr

def test_lambda_sweep_notebook_writes_its_table(tmp_path):
    args = tiny_method_args(); args.pop('encoder')
    r = jepa_lab('run', str(ROOT / 'nbs' / 'experiments' / 'lambda_sweep.ipynb'), '-p', 'lams', '[0.0, 1.0]', '-p', 'steps', '2',
                 '-p', 'batch_size', '16', '-p', 'method_args', repr(args), '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads((tmp_path / 'results.json').read_text())
    assert [row['run'] for row in table] == ['λ=0', 'λ=1'] and all(row['emb_std'] > 0 for row in table)
    assert (tmp_path / 'figures' / 'lambda_sweep.png').exists()
    assert (tmp_path / 'results.md').read_text().splitlines()[3].startswith('| λ=1 |') and '\nresults.md:\n| run |' in r.stdout

def test_av_jepa_notebook_reports_retrieval_and_per_modality_probes(tmp_path):
    r = jepa_lab('run', str(ROOT / 'nbs' / 'experiments' / 'av_jepa.ipynb'), '-p', 'steps', '4', '-p', 'n_train', '48',
                 '-p', 'n_test', '24', '-p', 'batch_size', '16', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((tmp_path / 'summary.json').read_text())['av_eval']
    assert set(ev) == {'trained', 'random_init'} and abs(ev['trained']['chance_r1'] - 1 / 24) < 1e-12
    assert set(ev['trained']['linear_acc']) == {'av', 'a', 'v'} and {'R@1', 'median_rank'} <= set(ev['trained']['a2v'])
    rows = json.loads((tmp_path / 'results.json').read_text())              # the same numbers as the table `jepa-lab run` prints
    assert [row['encoder'] for row in rows] == ['trained', 'random init'] and rows[1]['a2v_R@1'] == ev['random_init']['a2v']['R@1']
    assert '\nresults.md:\n| encoder | A→V R@1 |' in r.stdout, r.stdout[-2000:]

def test_av_ablations_notebook_writes_its_table(tmp_path):
    r = jepa_lab('run', str(ROOT / 'nbs' / 'experiments' / 'av_ablations.ipynb'), '-p', 'steps', '2', '-p', 'n_train', '32',
                 '-p', 'n_test', '16', '-p', 'batch_size', '16', '-p', 'variants', "{'baseline': {}, 'lam_0': {'lam': 0.0}}",
                 '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads((tmp_path / 'results.json').read_text())
    assert [row['variant'] for row in table] == ['baseline', 'lam_0'] and all(0 <= row['a2v_R1'] <= 1 for row in table)
    assert (tmp_path / 'results.md').read_text().splitlines()[3].startswith('| lam_0 |')

AV_FIGURES = {'cross_modal_attention.png', 'tsne_by_modality.png', 'feature_pca.png', 'loss_decomposition.png', 'embedding_std.png'}

def test_av_analysis_notebook_trains_its_own_run_or_only_reads_a_given_one(tmp_path):
    "run_dir '' trains into --out/run; a given finished run_dir is read, never written; an unfinished one fails clearly."
    nb, own, other = ROOT / 'nbs' / 'viz' / 'av_analysis.ipynb', tmp_path / 'own', tmp_path / 'other'
    tiny = ['-p', 'steps', '2', '-p', 'n_train', '32', '-p', 'batch_size', '16', '-p', 'n_eval', '24', '-p', 'n_clips', '2']
    r = jepa_lab('run', str(nb), *tiny, '--out', str(own))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((own / 'run' / 'summary.json').read_text())['steps'] == 2 and (own / 'av_analysis.ipynb').exists()
    assert {p.name for p in (own / 'figures').iterdir()} >= AV_FIGURES
    state = lambda d: (d.stat().st_mtime_ns, sorted((p.relative_to(d), p.stat().st_mtime_ns) for p in d.rglob('*')))
    before = state(own / 'run')
    r = jepa_lab('run', str(nb), '-p', 'run_dir', str(own / 'run'), '-p', 'n_eval', '24', '-p', 'n_clips', '2', '--out', str(other))
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in (other / 'figures').iterdir()} >= AV_FIGURES and not (other / 'run').exists()
    assert state(own / 'run') == before                                         # read only: nothing written, not even a lock
    r = jepa_lab('run', str(nb), '-p', 'run_dir', str(tmp_path / 'nothing'), '--out', str(tmp_path / 'fails'))
    assert r.returncode == 1 and 'holds no finished run (status: new)' in r.stderr and not (tmp_path / 'nothing').exists()

def test_av_finetune_notebook_pretrains_its_own_run_under_out_and_writes_its_table(tmp_path):
    pre = tmp_path / 'pretrained'
    r = jepa_lab('run', str(ROOT / 'nbs' / 'experiments' / 'av_finetune.ipynb'), '-p', 'pretrain_steps', '2',
                 '-p', 'steps', '3', '-p', 'n_train', '32', '-p', 'n_test', '12', '-p', 'batch_size', '16', '-p', 'n_clips', '2',
                 '-p', 'heads', "['attentive']", '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((pre / 'summary.json').read_text())['steps'] == 2
    assert json.loads((tmp_path / 'pretrained_attentive' / 'config.json').read_text())['method_args']['pretrained'] == str(pre)
    res = json.loads((tmp_path / 'results.json').read_text())
    assert set(res) == {'pretrained_attentive', 'random_init_attentive'}
    assert all(set(v) == {'train_loss', 'av', 'a', 'v'} and 0 <= v['av']['top1'] <= v['av']['top5'] <= 1 for v in res.values())
    table = (tmp_path / 'results.md').read_text().splitlines()              # header, rule, one row per run, then the note
    assert table[2].startswith('| pretrained_attentive |') and table[3].startswith('| random_init_attentive |') and table[4] == ''

def test_dmt_maps_notebook_trains_its_runs_under_out_for_the_steps_asked(tmp_path):
    "Two --out folders with different steps: each trains its own two runs (the old notebook reused the first steps' runs in nbs/viz/runs)."
    nb, viz_runs = ROOT / 'nbs' / 'viz' / 'dmt_maps.ipynb', ROOT / 'nbs' / 'viz' / 'runs'
    listing = lambda: sorted(map(str, viz_runs.rglob('*'))) if viz_runs.exists() else None
    before = listing()
    for steps in (1, 2):
        out = tmp_path / f'steps{steps}'
        r = jepa_lab('run', str(nb), '-p', 'steps', str(steps), '-p', 'batch_size', '8', '-p', 'n_train', '32', '-p', 'n_images', '2',
                     '--out', str(out))
        assert r.returncode == 0, r.stderr[-3000:]
        for method in ('ijepa', 'dmt_jepa'):
            s = json.loads((out / 'runs' / method / 'summary.json').read_text())
            assert s['status'] == 'finished' and s['steps'] == steps, (method, s)
        assert {p.name for p in (out / 'figures').iterdir()} >= {'attention_maps.png', 'similarity_top10.png'}
    assert listing() == before                            # nothing written into the source tree

def test_explore_notebook_opens_the_explorers_on_a_quickstart_run_and_stays_small(tmp_path):
    r = jepa_lab('run', 'viz/explore', '-p', 'steps', '6', '-p', 'keep_every', '3', '-p', 'n_points', '30', '--quiet', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    cells = json.loads((tmp_path / 'explore.ipynb').read_text())['cells']
    views = [''.join(o['data']['text/plain']) for c in cells if c['cell_type'] == 'code' for o in c['outputs'] if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    assert len(views) == 3 and "SelectMultiple(description='runs'" in views[0] and "SelectionSlider(" in views[1] and "description='map'" in views[2], views
    assert sorted(p.name for p in (tmp_path / 'quickstart' / 'checkpoints').glob('step_*')) == ['step_0000000.pt', 'step_0000003.pt', 'step_0000006.pt']
    assert (tmp_path / 'explore.ipynb').stat().st_size < 200_000 and (tmp_path / 'report.html').stat().st_size < 2_000_000   # no plotly.js in the saved state

def test_run_with_nproc_per_node_trains_on_two_ranks_and_evaluates_once(tmp_path):
    r = jepa_lab('run', str(PRETRAIN), *TINY, '-p', 'device', 'cpu', '--nproc-per-node', '2', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((tmp_path / 'logs').glob('*/attempt_0/1'))) == 1        # the notebook's launch(cfg) started rank 1
    assert json.loads((tmp_path / 'summary.json').read_text())['frozen_eval']['trained']['linear_acc'] >= 0   # the cells after it ran once
    assert 'JEPA_LAB_NPROC_PER_NODE' not in os.environ                      # the option reached the kernel, not this process
