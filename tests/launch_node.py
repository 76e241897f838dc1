"""`jepa-lab launch` as the CLI will run it (jepa_lab.launch's add_launch_arguments + launch_main): one node of a launch in
tests/test_launch.py. Usage: python tests/launch_node.py [--nproc-per-node N --nnodes N --node-rank R --rdzv-endpoint H:P] CONFIG.json"""
import argparse, sys
from jepa_lab.launch import add_launch_arguments, launch_main

if __name__ == '__main__':
    sys.exit(launch_main(add_launch_arguments(argparse.ArgumentParser(prog='jepa-lab launch')).parse_args()))
