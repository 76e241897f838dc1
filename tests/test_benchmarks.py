"""The benchmarks run and end with their `ratio=` line (tiny sizes: the figures themselves come from full runs)."""
import re, subprocess, sys
from conftest import ROOT

def test_mmoe_benchmark_prints_its_ratio():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'mmoe.py'), '--width', '32', '--batch', '16', '--reps', '2'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.fullmatch(r'ratio=\d+\.\d+', r.stdout.strip().splitlines()[-1])

def test_m3_cache_benchmark_prints_its_ratio():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'm3_cache.py'), '--timm', '', '--encoder', 'vit_nano', '--img', '32', '--patch', '8',
                        '--batch', '4', '--reps', '1', '--lora-layers', '1', '--threads', '1'], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.fullmatch(r'ratio=\d+\.\d+', r.stdout.strip().splitlines()[-1])

def test_throughput_benchmark_prints_its_ratio():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'throughput.py'), '--quick', '--threads', '1', '--num-workers', '0'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert re.fullmatch(r'ratio=\d+\.\d+', lines[-1]) and any(l.startswith('trainer') for l in lines) and any(l.startswith('bare') for l in lines)

def test_sigreg_benchmark_measures_beside_a_busy_neighbour():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'sigreg.py'), '--quick', '--device', 'cpu'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert re.fullmatch(r'ratio=\d+\.\d+', lines[-1]) and any('busy neighbour' in l for l in lines)
