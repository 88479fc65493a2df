import pytest

from exporter.naming import port_label, protocol_label, workload_from_labels, workload_from_pod_name


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("temporal-history-7d9f8b6c5d-x2x4z", "temporal-history"),  # Deployment pod
        ("coredns-576cbf47c7", "coredns"),  # a ReplicaSet name / aggregated prefix
        ("cilium-vx7kq", "cilium"),  # DaemonSet pod
        ("postgresql-0", "postgresql"),  # StatefulSet pod
        ("elasticsearch-master-12", "elasticsearch-master"),
        ("test-client", "test-client"),  # bare pod: unchanged
        ("xwing", "xwing"),
        ("deathstar-7848d6c4d5-th9v2", "deathstar"),
        # vowels and 0/1/3 are not in the generated-name alphabet: not a suffix
        ("payment-worker-aeiou", "payment-worker-aeiou"),
        ("web-abcde", "web-abcde"),
        ("backup-28373640-4vq2p", "backup-28373640"),  # CronJob Job pod: the Job name (digits are not A)
    ],
)
def test_workload_from_pod_name(pod: str, workload: str) -> None:
    assert workload_from_pod_name(pod) == workload


def test_workload_from_labels_precedence() -> None:
    assert workload_from_labels({"app": "a", "app.kubernetes.io/name": "b", "k8s-app": "c"}) == "b"
    assert workload_from_labels({"app": "a", "k8s-app": "c"}) == "a"
    assert workload_from_labels({"k8s-app": "kube-dns"}) == "kube-dns"
    assert workload_from_labels({"tier": "x"}) == "unknown"


@pytest.mark.parametrize(
    ("given", "label"),
    [("tcp", "TCP"), ("UDP", "UDP"), ("icmp", "ICMPv4"), ("icmp6", "ICMPv6"), ("sctp", "SCTP"),
     ("6", "TCP"), ("17", "UDP"), ("58", "ICMPv6"), ("gre", "GRE"), ("47", "47")],
)
def test_protocol_label(given: str, label: str) -> None:
    assert protocol_label(given) == label


def test_port_label_only_for_port_protocols() -> None:
    assert port_label("TCP", 443) == "443"
    assert port_label("SCTP", 9000) == "9000"
    assert port_label("ICMPv4", 8) == ""
    assert port_label("UDP", None) == ""
