"""Baseline checks, one function per upstream versioned CheckPod.

Each returns None when allowed, else (forbidden reason, forbidden detail) worded as upstream. Sources are the files
staging/src/k8s.io/pod-security-admission/policy/check_<id>.go named on each function.
"""

from __future__ import annotations

from .messages import go_quote, join_quote, pluralize, setters
from .pod import Obj, PodInput, name, obj, sc, sub, text

Outcome = tuple[str, str] | None
CONTAINER = ("container", "containers")


HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def host_namespace(spec: Obj, field: str) -> bool:
    """One host namespace shared: the field is exactly true (check_hostNamespaces.go)."""
    return spec.get(field) is True


def host_namespaces_1_0(p: PodInput) -> Outcome:
    """check_hostNamespaces.go: hostNetwork, hostPID, hostIPC must be unset or false."""
    bad = [f"{f}=true" for f in HOST_NAMESPACES if host_namespace(p.spec, f)]
    return ("host namespaces", ", ".join(bad)) if bad else None


def privileged(container: Obj) -> bool:
    """The container sets securityContext.privileged=true (check_privileged.go): the one reading of the field for
    the scan, admission and the audit rules."""
    s = sc(container)
    return s is not None and s.get("privileged") is True


def privileged_1_0(p: PodInput) -> Outcome:
    """check_privileged.go: securityContext.privileged must be unset or false."""
    bad = [name(c) for c in p.containers if privileged(c)]
    if bad:
        return "privileged", f"{setters(CONTAINER, bad)} must not set securityContext.privileged=true"
    return None


# check_capabilities_baseline.go capabilities_allowed_1_0 (the container runtime's default set).
CAPABILITIES_ALLOWED_1_0 = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def capabilities(c: Obj, key: str) -> list[str]:
    """capabilities.add or .drop of a container as Go strings (upstream compares them literally)."""
    return _caps(c, key)


def _caps(c: Obj, key: str) -> list[str]:
    caps = sub(sc(c), "capabilities")
    values = caps.get(key) if caps is not None else None
    return [text(v) for v in values] if isinstance(values, list) else []


def capabilities_baseline_1_0(p: PodInput) -> Outcome:
    """check_capabilities_baseline.go: capabilities.add only from the default set."""
    bad: list[str] = []
    caps: set[str] = set()
    for c in p.containers:
        extra = [v for v in _caps(c, "add") if v not in CAPABILITIES_ALLOWED_1_0]
        if extra:
            bad.append(name(c))
            caps.update(extra)
    if bad:
        return "non-default capabilities", (
            f"{setters(CONTAINER, bad)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return None


def host_path(volume: Obj) -> Obj | None:
    """The hostPath source of a volume, when it has one (check_hostPathVolumes.go: a non-nil HostPath)."""
    return obj(volume.get("hostPath"))


def host_path_volumes_1_0(p: PodInput) -> Outcome:
    """check_hostPathVolumes.go: no hostPath volumes."""
    bad = [text(v.get("name")) for v in _volumes(p) if host_path(v) is not None]
    return ("hostPath volumes", setters(("volume", "volumes"), bad)) if bad else None


def _volumes(p: PodInput) -> list[Obj]:
    vols = p.spec.get("volumes")
    return [v for v in vols if isinstance(v, dict)] if isinstance(vols, list) else []


def host_port(port: object) -> int | None:
    """The host port a ports[] entry binds, or None: only a non-zero integer counts (check_hostPorts.go reads the
    int32 field; a string or boolean is no port, as core/v1 ContainerPort.HostPort cannot decode from one)."""
    hp = port.get("hostPort") if isinstance(port, dict) else None
    return hp if isinstance(hp, int) and not isinstance(hp, bool) and hp != 0 else None


def host_ports_1_0(p: PodInput) -> Outcome:
    """check_hostPorts.go: containers[*].ports[*].hostPort unset or 0."""
    bad: list[str] = []
    ports: set[str] = set()
    for c in p.containers:
        found = False
        ports_list = c.get("ports")
        for port in ports_list if isinstance(ports_list, list) else ():
            if (hp := host_port(port)) is not None:
                found = True
                ports.add(str(hp))
        if found:
            bad.append(name(c))
    if bad:
        # Upstream keeps the ports in a string set, so they list in string order ("10", "9").
        return "hostPort", (
            f"{setters(CONTAINER, bad)} {pluralize('uses', 'use', len(bad))} "
            f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}"
        )
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_annotation_ok(value: str) -> bool:
    return value == "" or value == "runtime/default" or value.startswith("localhost/")


def app_armor_profile_1_0(p: PodInput) -> Outcome:
    """check_appArmorProfile.go: appArmorProfile.type RuntimeDefault/Localhost; beta annotations too."""
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    prof = sub(p.pod_sc, "appArmorProfile")
    if prof is not None and prof.get("type") not in ("RuntimeDefault", "Localhost"):
        bad_setters.append("pod")
        bad_values.add(text(prof.get("type")))
    bad: list[str] = []
    for c in p.containers:
        prof = sub(sc(c), "appArmorProfile")
        if prof is not None and prof.get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append(name(c))
            bad_values.add(text(prof.get("type")))
    if bad:
        bad_setters.append(setters(CONTAINER, bad))
    annotations = sorted(
        f"{k}={go_quote(text(v))}" for k, v in p.annotations.items()
        if isinstance(k, str) and k.startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_ok(text(v))
    )
    values = sorted(bad_values) + annotations
    if annotations:
        bad_setters.append(pluralize("annotation", "annotations", len(annotations)))
    if bad_setters:
        return pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)), (
            f"{' and '.join(bad_setters)} must not set AppArmor profile type to {join_quote(values)}"
        )
    return None


# check_seLinuxOptions.go selinuxAllowedTypes1_0 and 1_31 (adds container_engine_t).
SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _se_linux(p: PodInput, allowed: frozenset[str]) -> Outcome:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(opts: Obj) -> bool:
        ok = True
        t = text(opts.get("type"))
        if t not in allowed:
            ok = False
            bad_types.add(t)
        for key in ("user", "role"):
            if text(opts.get(key)):
                ok = False
                flags[key] = True
        return ok

    bad_setters: list[str] = []
    opts = sub(p.pod_sc, "seLinuxOptions")
    if opts is not None and not valid(opts):
        bad_setters.append("pod")
    bad = [name(c) for c in p.containers if (o := sub(sc(c), "seLinuxOptions")) is not None and not valid(o)]
    if bad:
        bad_setters.append(setters(CONTAINER, bad))
    if not bad_setters:
        return None
    data: list[str] = []
    if bad_types:
        data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
    data += [f"{k} may not be set" for k in ("user", "role") if flags[k]]
    return "seLinuxOptions", f"{' and '.join(bad_setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}"


def se_linux_options_1_0(p: PodInput) -> Outcome:
    return _se_linux(p, SELINUX_TYPES_1_0)


def se_linux_options_1_31(p: PodInput) -> Outcome:
    return _se_linux(p, SELINUX_TYPES_1_31)


def proc_mount_1_0(p: PodInput) -> Outcome:
    """check_procMount_baseline.go procMount_1_0: procMount unset or "Default"."""
    bad: list[str] = []
    types: set[str] = set()
    for c in p.containers:
        s = sc(c)
        if s is None or s.get("procMount") is None:
            continue
        value = text(s.get("procMount"))
        if value != "Default":
            bad.append(name(c))
            types.add(value)
    if bad:
        return "procMount", (
            f"{setters(CONTAINER, bad)} must not set securityContext.procMount to {join_quote(sorted(types))}"
        )
    return None


def proc_mount_1_35(p: PodInput) -> Outcome:
    """v1.35: any procMount is allowed for a user-namespaced pod (hostUsers: false, KEP-127)."""
    return None if p.user_namespace else proc_mount_1_0(p)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_annotation_ok(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(p: PodInput) -> Outcome:
    """check_seccompProfile_baseline.go before v1.19: the alpha annotations must not be unconfined."""
    forbidden: set[str] = set()
    ann = p.annotations
    if SECCOMP_POD_ANNOTATION in ann and not _seccomp_annotation_ok(text(ann[SECCOMP_POD_ANNOTATION])):
        forbidden.add(f"{SECCOMP_POD_ANNOTATION}={go_quote(text(ann[SECCOMP_POD_ANNOTATION]))}")
    for c in p.containers:
        key = SECCOMP_CONTAINER_PREFIX + name(c)
        if key in ann and not _seccomp_annotation_ok(text(ann[key])):
            forbidden.add(f"{key}={go_quote(text(ann[key]))}")
    if forbidden:
        return "seccompProfile", (
            f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} {', '.join(sorted(forbidden))}"
        )
    return None


def valid_seccomp(profile: Obj) -> bool:
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def seccomp_profile_baseline_1_19(p: PodInput) -> Outcome:
    """From v1.19 the seccompProfile fields: a set type must be RuntimeDefault or Localhost."""
    bad_setters: list[str] = []
    values: set[str] = set()
    prof = sub(p.pod_sc, "seccompProfile")
    if prof is not None and not valid_seccomp(prof):
        bad_setters.append("pod")
        values.add(text(prof.get("type")))
    bad: list[str] = []
    for c in p.containers:
        prof = sub(sc(c), "seccompProfile")
        if prof is not None and not valid_seccomp(prof):
            bad.append(name(c))
            values.add(text(prof.get("type")))
    if bad:
        bad_setters.append(setters(CONTAINER, bad))
    if bad_setters:
        return "seccompProfile", (
            f"{' and '.join(bad_setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}"
        )
    return None


# check_sysctls.go sysctlsAllowedV1Dot0 … V1Dot37: the safe, namespaced sysctls.
SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_1_37 = SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


SYSCTLS_LATEST = SYSCTLS_1_37


def sysctl_names(p: PodInput) -> list[tuple[int, str]]:
    """(index, name) of spec.securityContext.sysctls[*] as written: upstream compares the literal name
    (check_sysctls.go `allowed.Has(sysctl.Name)`), so the `/` form of a safe sysctl is not in the safe set."""
    entries = p.pod_sc.get("sysctls") if p.pod_sc is not None else None
    if not isinstance(entries, list):
        return []
    return [(i, text(e.get("name"))) for i, e in enumerate(entries) if isinstance(e, dict)]


def _sysctls(p: PodInput, allowed: frozenset[str]) -> Outcome:
    entries = p.pod_sc.get("sysctls") if p.pod_sc is not None else None
    if not isinstance(entries, list):
        return None
    bad = [n for e in entries if isinstance(e, dict) and (n := text(e.get("name"))) not in allowed]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def sysctls_1_0(p: PodInput) -> Outcome:
    return _sysctls(p, SYSCTLS_1_0)


def sysctls_1_27(p: PodInput) -> Outcome:
    return _sysctls(p, SYSCTLS_1_27)


def sysctls_1_29(p: PodInput) -> Outcome:
    return _sysctls(p, SYSCTLS_1_29)


def sysctls_1_32(p: PodInput) -> Outcome:
    return _sysctls(p, SYSCTLS_1_32)


def sysctls_1_37(p: PodInput) -> Outcome:
    return _sysctls(p, SYSCTLS_1_37)


def _host_process(s: Obj | None) -> bool:
    opts = sub(s, "windowsOptions")
    return opts is not None and opts.get("hostProcess") is True


def windows_host_process_1_0(p: PodInput) -> Outcome:
    """check_windowsHostProcess.go: windowsOptions.hostProcess unset or false."""
    bad_setters = ["pod"] if _host_process(p.pod_sc) else []
    bad = [name(c) for c in p.containers if _host_process(sc(c))]
    if bad:
        bad_setters.append(setters(CONTAINER, bad))
    if bad_setters:
        return "hostProcess", f"{' and '.join(bad_setters)} must not set securityContext.windowsOptions.hostProcess=true"
    return None


def _hosts(handler: Obj | None) -> list[str]:
    if handler is None:
        return []
    out = []
    for key in ("httpGet", "tcpSocket"):
        action = sub(handler, key)
        if action is not None and (host := text(action.get("host"))):
            out.append(host)
    return out


def host_probes_and_host_lifecycle_1_34(p: PodInput) -> Outcome:
    """check_hostProbesAndhostLifecycle.go: probes and lifecycle handlers must not name a host."""
    bad: set[str] = set()
    hosts: set[str] = set()
    for c in p.containers:
        found = [h for k in ("livenessProbe", "readinessProbe", "startupProbe") for h in _hosts(obj(c.get(k)))]
        lifecycle = obj(c.get("lifecycle"))
        if lifecycle is not None:
            found += [h for k in ("postStart", "preStop") for h in _hosts(obj(lifecycle.get(k)))]
        if found:
            bad.add(name(c))
            hosts.update(found)
    if bad:
        # Both collections are sets upstream, so containers and hosts list sorted.
        return "probe or lifecycle host", (
            f"{setters(CONTAINER, sorted(bad))} {pluralize('uses', 'use', len(bad))} "
            f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(sorted(hosts))}"
        )
    return None
