"""Audit events: streaming reader, detections, alert sinks, live follow (watch), webhook backend (serve),
minimal RBAC from observed requests (audit2rbac) and audit policy generation/lint."""
