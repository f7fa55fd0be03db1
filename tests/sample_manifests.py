"""Small manifests several test modules scan: one copy, so the modules agree on what they feed the pipeline."""

from __future__ import annotations

# A Deployment in `shop` whose one container is privileged (KW-W001, critical).
PRIV = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        securityContext:
          privileged: true
"""
