"""Pod security settings are present on every pod of every shape.

Everywhere: seccomp RuntimeDefault, no privilege escalation, read-only root filesystem, every capability
dropped and none added, not privileged, no host namespaces, CPU and memory requests and limits,
liveness and readiness probes. Non-root everywhere except the two node-file readers: Cilium's agent
and Felix write their flow logs as root with mode 0600, which only uid 0 can read; those pods run as
uid 0 holding no capability at all, mount the log directory read-only, and write only their state
directory under /var/lib/netpol-exporter.
"""

from __future__ import annotations

from tests.deploy.manifests import NODE_FILE_READERS, Obj, Rendered, containers, ident, pod_spec

FORBIDDEN_POD_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def _effective(pod: Obj, container: Obj, key: str) -> object:
    value = container.get("securityContext", {}).get(key)
    return value if value is not None else pod.get("securityContext", {}).get(key)


def test_container_hardening(overlay: Rendered) -> None:
    workload = overlay.workload()
    pod = pod_spec(workload)
    for field in FORBIDDEN_POD_FIELDS:
        assert not pod.get(field), f"{ident(workload)}: {field}"
    assert pod.get("nodeSelector", {}).get("kubernetes.io/os") == "linux", f"{ident(workload)}: a Linux-only image"
    for container in containers(workload):
        where = f"{ident(workload)} container {container['name']}"
        context = container.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, where
        assert context.get("readOnlyRootFilesystem") is True, where
        assert context.get("privileged") in (None, False), where
        assert context.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not context.get("capabilities", {}).get("add"), where
        seccomp = _effective(pod, container, "seccompProfile")
        assert isinstance(seccomp, dict) and seccomp.get("type") == "RuntimeDefault", where
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(kind, {}).keys(), f"{where}: {kind}"
        assert "livenessProbe" in container and "readinessProbe" in container, where


def test_non_root_unless_a_node_file_reader(overlay: Rendered) -> None:
    workload = overlay.workload()
    pod = pod_spec(workload)
    for container in containers(workload):
        where = f"{ident(workload)} container {container['name']}"
        uid = _effective(pod, container, "runAsUser")
        if overlay.name in NODE_FILE_READERS:
            assert uid == 0, f"{where}: the root-owned 0600 flow log needs uid 0"
            assert _effective(pod, container, "runAsNonRoot") is False, where
        else:
            assert _effective(pod, container, "runAsNonRoot") is True, where
            assert isinstance(uid, int) and uid > 0, f"{where}: runAsUser {uid}"
            group = _effective(pod, container, "runAsGroup")
            assert isinstance(group, int) and group > 0, f"{where}: runAsGroup {group}"


def test_host_paths_are_the_flow_logs_read_only_and_the_state_dir(overlay: Rendered) -> None:
    workload = overlay.workload()
    pod = pod_spec(workload)
    host_volumes = {v["name"]: v["hostPath"] for v in pod.get("volumes", []) if "hostPath" in v}
    if overlay.name not in NODE_FILE_READERS:
        assert not host_volumes, f"{ident(workload)}: hostPath volumes {sorted(host_volumes)}"
        return
    for container in containers(workload):
        for mount in container.get("volumeMounts", []):
            host = host_volumes.get(mount["name"])
            if host is None:
                continue
            if host["path"].startswith("/var/lib/netpol-exporter/"):
                assert host.get("type") == "DirectoryOrCreate", f"{ident(workload)}: {host}"
            else:
                assert mount.get("readOnly") is True, f"{ident(workload)}: {host['path']} is writable"
                assert host.get("type") == "Directory", f"{ident(workload)}: {host}"


def test_pod_security_admission_level_fits_the_pods(overlay: Rendered) -> None:
    """Deployments meet Pod Security "restricted"; the hostPath readers need (and get) "privileged"."""
    labels = overlay.one("Namespace")["metadata"]["labels"]
    level = labels["pod-security.kubernetes.io/enforce"]
    if overlay.name in NODE_FILE_READERS:
        assert level == "privileged"
        assert labels["pod-security.kubernetes.io/audit"] == "baseline"
    else:
        assert level == "restricted"
        pod = pod_spec(overlay.workload())
        # restricted: only these volume types
        allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= allowed, f"{overlay.name}: volume {volume['name']} is {kinds}"


def test_pod_runs_as_the_exporter_service_account(overlay: Rendered) -> None:
    [account] = overlay.kind("ServiceAccount")
    pod = pod_spec(overlay.workload())
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod.get("enableServiceLinks") is False, "service links leak every Service's address into the env"
