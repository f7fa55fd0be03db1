"""Node agent: exec allowlisting with fanotify, learning from the proc connector, flow monitoring.

Modules: `cgroups` (process → pod/container attribution), `allowlist` (the ExecAllowlist model and matching),
`fanotify` and `procconn` (kernel interfaces through ctypes/sockets), `enforce` and `learn` (the loops),
`flows` (conntrack observation evaluated with the NetworkPolicy engine).
"""
