"""`creds audit`: where the cluster's credentials are, how long they live, who holds them, and how to fix them.

Kubeconfigs (`kubeconfig`), the apiserver's static token and basic-auth files and bound-token settings (`tokens`),
certificates on the node and in webhook and APIService CA bundles (`certs`), and the scan's secret controls over a
live cluster (`audit`). Every credential found is also an `Expiry`, for the monitor's days-to-expiry metrics.
No message ever holds a credential's value. `keyrotation` is `encryption rotate`, the key rotation of
encryption at rest as a resumable state machine; `sakeys` is `creds rotate-sa-key`, the service-account signing
key's; both on `rotation` (step loop, state file, restart command).
"""
