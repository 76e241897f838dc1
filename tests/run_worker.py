"""Train the RunConfig in the JSON file argv[1]; with KILL_AT=<file name>, SIGKILL this process just before that file's
atomic rename (mid-write: the temporary file is complete, the real one not yet replaced). Used by tests/test_reliability.py."""
import json, os, signal, sys
from jepa_lab.train import RunConfig, train

if kill_at := os.environ.get('KILL_AT'):
    replace = os.replace
    def replace_or_die(src, dst):
        if os.path.basename(dst) == kill_at and 'running' not in open(src, errors='ignore').read(200): os.kill(os.getpid(), signal.SIGKILL)
        return replace(src, dst)
    os.replace = replace_or_die

print(json.dumps(train(RunConfig.from_dict(json.load(open(sys.argv[1]))))['final']))
