"""Known Kubernetes vulnerabilities: the OSV feed kubeward ships, an exact OSV range evaluator, the component
versions found in the input, and the findings they give (`kubeward vulns`)."""
