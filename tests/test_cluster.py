"""`jepa-lab submit` and `jepa-lab status` (jepa_lab.cluster): a real local job interrupted and requeued, resuming exactly; the batch
script SLURM would get, through a stand-in `sbatch`; bad input refused before anything is queued."""
import argparse, json, os, pickle, signal, stat, time
from pathlib import Path
import pytest
from conftest import ROOT, timeless

pytest.importorskip('submitit')
from jepa_lab.cluster import (add_status_arguments, add_submit_arguments, run_state, status_main, status_text, submit, submit_main)
from jepa_lab.files import read_json, read_jsonl, read_metrics

TINY_NB = ROOT / 'tests' / 'cluster_train.ipynb'          # RunConfig.tiny, 8 steps, a checkpoint every 4, optionally waiting at a step

def cli(main, add, *argv):
    "`jepa-lab submit|status ARGV` through the pieces jepa_lab.cli wires in: the exit status."
    p = argparse.ArgumentParser()
    add(p)
    return main(p.parse_args([str(a) for a in argv]))

def wait_for(path: Path, timeout=120):
    t = time.monotonic()
    while not path.exists():
        assert time.monotonic() - t < timeout, f"{path} did not appear"
        time.sleep(0.2)

def interrupt_when_paused(run: Path):
    """Send the job's task SLURM's warning signal (USR2) once the run waits at its pause step. (LocalJob._interrupt signals submitit's
    controller, which has no USR2 handler and dies, leaving the task running; SLURM signals the task itself, as here.)"""
    wait_for(run / 'paused')
    task = [a for a in read_jsonl(run / 'attempts.jsonl') if a['event'] == 'start'][-1]['pid']
    os.kill(task, signal.SIGUSR2)

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "The same tiny run, uninterrupted, in this process: its summary and metrics rows."
    from jepa_lab.train import RunConfig, train
    out = tmp_path_factory.mktemp('ref')
    s = train(RunConfig.tiny(out, steps=8, ckpt_every=4))
    return s, read_metrics(out)

def test_local_job_interrupted_requeues_and_resumes_exactly(tmp_path, reference, capsys):
    run = tmp_path / 'run'
    [job] = submit(TINY_NB, [('pause_at', '6')], run, executor='local', timeout_min=10)
    interrupt_when_paused(run)
    job.wait()
    assert job.state == 'FINISHED', job.stderr()
    events = [(a['event'], a.get('step')) for a in read_jsonl(run / 'attempts.jsonl')]
    assert events == [('start', None), ('stopped', 6), ('start', None), ('finished', 8)], events   # one requeue, by submitit
    assert 'Requeued job' in (job.stdout() or '') + (job.stderr() or '')
    env = read_json(run / 'environment.json')['starts']
    assert len(env) == 2                                                   # the second start resumed (from checkpoints/last.pt at step 4)
    s, rows = read_json(run / 'summary.json'), read_metrics(run)
    ref_s, ref_rows = reference
    assert s['status'] == 'finished' and s['steps'] == 8
    assert timeless([s['final']]) == timeless([ref_s['final']]) and timeless(rows) == timeless(ref_rows)
    assert read_json(run / 'run.json')['status'] == 'finished'
    logs = read_json(run / 'job.json')['jobs'][0]['logs']
    assert all(Path(p).is_relative_to(run / 'submitit') and Path(p).exists() for p in logs)
    assert cli(status_main, add_status_arguments, run) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run}: finished") and 'step        8 / 8' in out and 'last row    step=8, loss=' in out, out
    assert f"job {job.job_id}" in out and '2 started; last: finished' in out and logs[0] in out, out
    assert submit(TINY_NB, [('pause_at', '6')], run, executor='local') == [] and 'already finished' in capsys.readouterr().out

@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    "A stand-in `sbatch` on PATH that keeps each batch script it is given and answers with a job id."
    bin_, record = tmp_path / 'bin', tmp_path / 'sbatch_scripts'
    bin_.mkdir(); record.mkdir()
    (bin_ / 'sbatch').write_text(f'#!/bin/sh\ncp "$1" "{record}/$(ls {record} | wc -l).sh"\necho "Submitted batch job 4242"\n')
    (bin_ / 'srun').write_text('#!/bin/sh\nexit 1\n')                     # submitit looks for it; the job never runs here
    for f in bin_.iterdir(): f.chmod(0o755)
    monkeypatch.setenv('PATH', f"{bin_}:{os.environ['PATH']}")
    return record

def test_slurm_batch_script(tmp_path, fake_sbatch, monkeypatch):
    out = tmp_path / 'sweep'
    rc = cli(submit_main, add_submit_arguments, TINY_NB, '-p', 'steps', '8', '--out', out, '--array-param', 'ckpt_every', '2,4',
             '--nodes', 2, '--gpus-per-node', 8, '--partition', 'h200', '--timeout-min', 240, '--account', 'lab', '--qos', 'high',
             '--constraint', 'h200', '--cpus-per-task', 64, '--mem', '480G', '--sbatch', 'exclusive', '--sbatch', '#SBATCH --reservation=maint', '--sbatch=--gres=gpu:8',
             '--setup', 'module load cuda/12.8', '--setup', 'source /opt/venv/bin/activate')
    assert rc == 0
    [script] = [p.read_text() for p in fake_sbatch.iterdir()]              # one sbatch call: a job array of 2
    lines = script.splitlines()
    for line in ['#SBATCH --nodes=2', '#SBATCH --ntasks-per-node=1', '#SBATCH --gpus-per-node=8', '#SBATCH --partition=h200',
                 '#SBATCH --time=240', '#SBATCH --account=lab', '#SBATCH --qos=high', '#SBATCH --constraint=h200', '#SBATCH --cpus-per-task=64',
                 '#SBATCH --mem=480G', '#SBATCH --exclusive', '#SBATCH --gres=gpu:8', '#SBATCH --reservation=maint', '#SBATCH --array=0-1%2',
                 '#SBATCH --signal=USR2@120', '#SBATCH --requeue', 'module load cuda/12.8', 'source /opt/venv/bin/activate',
                 'export SUBMITIT_EXECUTOR=slurm']:
        assert line in lines, (line, script)
    srun = next(l for l in lines if l.startswith('srun '))
    assert f"--output {out / 'submitit'}/%A_%a_%t_log.out" in srun and srun.endswith(f"-m submitit.core._submit {out / 'submitit'}"), srun
    assert lines.index('source /opt/venv/bin/activate') < lines.index(srun)
    for i, every in enumerate(['2', '4']):                                 # a run folder per value, each with its job and logs
        run = out / f'ckpt_every_{every}'
        assert read_json(run / 'run.json')['status'] == 'submitted' and read_json(run / 'run.json')['params']['ckpt_every'] == int(every)
        [j] = read_json(run / 'job.json')['jobs']
        assert j['job_id'] == f'4242_{i}' and j['logs'][0] == str(out / 'submitit' / f'4242_{i}_0_log.out')
        job = pickle.loads((out / 'submitit' / f'4242_{i}_submitted.pkl').read_bytes()).function   # what the node unpickles
        assert job.params == [('steps', '8'), ('ckpt_every', every)] and job.run_dir == str(run) and job.gpus_per_node == 8
    import submitit
    for k, v in dict(SUBMITIT_EXECUTOR='slurm', SLURM_JOB_ID='4243', SLURM_ARRAY_JOB_ID='4242', SLURM_ARRAY_TASK_ID='1', SLURM_JOB_NODELIST='gpu[07-08]',
                     SLURM_NODEID='1', SLURM_JOB_NUM_NODES='2', SLURM_PROCID='1', SLURM_LOCALID='0', SLURM_NTASKS='2').items(): monkeypatch.setenv(k, v)
    env = job.environment(submitit.JobEnvironment())                       # on the second node of task 1 of the array
    assert {k: env[k] for k in ('JEPA_LAB_NPROC_PER_NODE', 'JEPA_LAB_NNODES', 'JEPA_LAB_NODE_RANK', 'JEPA_LAB_RDZV_ID')} == \
        dict(JEPA_LAB_NPROC_PER_NODE='8', JEPA_LAB_NNODES='2', JEPA_LAB_NODE_RANK='1', JEPA_LAB_RDZV_ID='4242_1')
    assert env['JEPA_LAB_RDZV_ENDPOINT'].startswith('gpu07:') and env['JEPA_LAB_LAUNCH_DIR'] == str(run)   # node 0 posts its launches there
    assert job.command(node=1)[3:] == ['launch', '--follow', str(run)]
    text = status_text(out)                                                # no sacct here: the scheduler's state is not asked
    assert [l.split(': ')[-1] for l in text.splitlines() if l.startswith(str(out))] == ['submitted'] * 2 and '4242_0' in text and '4242_1' in text and '_log.out' in text
    rc = cli(submit_main, add_submit_arguments, TINY_NB, '-p', 'steps', '8', '--out', out, '--array-param', 'ckpt_every', '2,4', '--partition', 'h200')
    assert rc == 0 and len(list(fake_sbatch.iterdir())) == 2              # submitted again: the same runs, not yet started, resume

def test_bad_input_is_refused_before_anything_is_queued(tmp_path, fake_sbatch, monkeypatch, capsys):
    def refused(*argv, out=tmp_path / 'x'):
        rc = cli(submit_main, add_submit_arguments, TINY_NB, *argv, '--out', out)
        err = capsys.readouterr().err
        assert rc == 1 and err.startswith('jepa-lab: '), err
        return err
    err = refused('-p', 'lamda', '0.1')
    assert "no parameter(s) lamda" in err and 'pause_at' in err
    assert "an empty value" in refused('--array-param', 'steps', '4,,8')
    assert "with both -p and --array-param" in refused('-p', 'steps', '4', '--array-param', 'steps', '4,8')
    assert "long form" in refused('--sbatch', '-x node1')
    assert "--nodes 2 needs --executor slurm" in refused('--executor', 'local', '--nodes', '2')
    assert not (tmp_path / 'x').exists() and not list(fake_sbatch.iterdir())
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    err = refused()
    assert "no `sbatch` (or `srun`) on PATH" in err and "--executor local" in err
    monkeypatch.setitem(__import__('sys').modules, 'submitit', None)
    assert "pip install 'jepa_lab[cluster]'" in refused('--executor', 'local')
    monkeypatch.undo()
    (tmp_path / 'other').mkdir(); (tmp_path / 'other' / 'notes.txt').write_text('mine')
    assert "holds no jepa-lab run" in refused('--executor', 'local', out=tmp_path / 'other')
    (tmp_path / 'done').mkdir()
    (tmp_path / 'done' / 'run.json').write_text(json.dumps(dict(notebook='cluster_train.ipynb', status='finished',
                                                                params=dict(steps=8, ckpt_every=4, pause_at=None))))
    assert "(steps: 8 -> 6)" in refused('-p', 'steps', '6', '--executor', 'local', out=tmp_path / 'done')
    assert cli(status_main, add_status_arguments, tmp_path / 'nowhere') == 1 and 'no run folder' in capsys.readouterr().err

def test_status_of_an_interrupted_run(tmp_path, capsys):
    run = tmp_path / 'run'
    [job] = submit(TINY_NB, [('pause_at', '6')], run, executor='local', timeout_min=10, max_timeouts=0)   # timed out once too often: not requeued
    interrupt_when_paused(run)
    job.wait()
    assert cli(status_main, add_status_arguments, run) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run}: interrupted") and 'step        6 / 8' in out and 'training: interrupted' in out, out
    assert 'last row    step=6, loss=' in out and f"job {job.job_id}" in out and 'DONE' in out and 'last: stopped' in out, out
    assert str(run / 'submitit' / f'{job.job_id}_0_log.out') in out
