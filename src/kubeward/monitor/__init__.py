"""`kubeward monitor`: the controls kept current on a live cluster (list+watch, incremental evaluation, alerts,
PolicyReports, metrics, leader election)."""
