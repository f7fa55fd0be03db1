"""Sleep until terminated: the body of a kubelet- or kube-proxy-shaped process (harness.Cluster.start_shaped).

Its command line is `<component> shaped_process.py <flags...>`; the flags are for /proc readers, not for this
script, which ignores them and exits on SIGTERM (or after an hour, so nothing outlives a lost test run).
"""

import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(3600)
