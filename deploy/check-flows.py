"""Checks the network flows that a rendered manifest's NetworkPolicies allow.

Reads one rendered kustomize output (a multi-document YAML file), works out which
workloads of the namespace may open a connection to which on the gRPC port, who may
reach a workload from outside the namespace, and which workloads may reach PostgreSQL,
and compares that with the flows the suite is designed to have (deploy/README.md,
"Network policies"). Exits non-zero and names every difference.

Usage: python check-flows.py RENDERED.yaml [--with-plr-challenge]
"""

import os
import sys

import yaml

GRPC_PORT = 50051
POSTGRES_PORT = 5432

# Who may call whom inside the namespace, as (caller, callee).
BASE_CALLS = {
    ("gateway", "identity"),
    ("gateway", "learner"),
    ("gateway", "batch"),
    ("learner", "identity"),
    ("batch", "identity"),
    ("batch", "learner"),
}
PLR_CHALLENGE_CALLS = {
    ("gateway", "plr"),
    ("gateway", "challenge"),
    ("batch", "plr"),
    ("plr", "identity"),
    ("plr", "learner"),
    ("challenge", "identity"),
    ("challenge", "learner"),
    ("challenge", "plr"),
}


def selector_matches(selector, labels):
    """Whether a Kubernetes label selector selects a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def port_allowed(rule, port):
    ports = rule.get("ports")
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == "TCP" and p.get("port") == port for p in ports)


def peer_is_same_namespace_pod(peer, labels):
    """Whether a policy peer selects a pod of the policy's own namespace with these labels."""
    if "ipBlock" in peer or "namespaceSelector" in peer:
        # Peers outside the namespace; an ipBlock is not meant for pod addresses.
        return False
    return selector_matches(peer.get("podSelector") or {}, labels)


def direction_allows(policies, direction, own_labels, peer_labels, port):
    """Whether traffic in one direction is allowed for a pod (own_labels) and a peer.

    peer_labels None stands for a peer outside the namespace that no ipBlock or
    namespace selector names: only a rule without peers admits it.
    """
    peers_key = "from" if direction == "Ingress" else "to"
    rules_key = "ingress" if direction == "Ingress" else "egress"
    selecting = [
        p for p in policies
        if direction in p["spec"].get("policyTypes", [])
        and selector_matches(p["spec"].get("podSelector") or {}, own_labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            if not port_allowed(rule, port):
                continue
            peers = rule.get(peers_key)
            if not peers:
                return True
            if peer_labels is not None and any(
                peer_is_same_namespace_pod(peer, peer_labels) for peer in peers
            ):
                return True
    return False


def egress_outside_allowed(policies, own_labels, port):
    """Whether a pod may reach some address outside the namespace on a port."""
    selecting = [
        p for p in policies
        if "Egress" in p["spec"].get("policyTypes", [])
        and selector_matches(p["spec"].get("podSelector") or {}, own_labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("egress") or []:
            if not port_allowed(rule, port):
                continue
            peers = rule.get("to")
            if not peers or any("ipBlock" in p or "namespaceSelector" in p for p in peers):
                return True
    return False


def main():
    path = sys.argv[1]
    with_plr_challenge = "--with-plr-challenge" in sys.argv[2:]
    with open(path, encoding="utf-8") as rendered:
        objects = [o for o in yaml.safe_load_all(rendered) if o]

    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    workloads = {}
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            workloads[labels["app.kubernetes.io/name"]] = labels

    services = {"identity", "learner", "batch", "gateway"}
    expected_calls = set(BASE_CALLS)
    if with_plr_challenge:
        services |= {"plr", "challenge"}
        expected_calls |= PLR_CHALLENGE_CALLS
    migrations = {f"{s}-migrate" for s in services if s != "gateway"}

    faults = []
    if set(workloads) != services | migrations:
        faults.append(f"workloads are {sorted(workloads)}, expected "
                      f"{sorted(services | migrations)}")

    allowed_calls = {
        (caller, callee)
        for caller, caller_labels in workloads.items()
        for callee, callee_labels in workloads.items()
        if caller != callee
        and direction_allows(policies, "Egress", caller_labels, callee_labels, GRPC_PORT)
        and direction_allows(policies, "Ingress", callee_labels, caller_labels, GRPC_PORT)
    }
    for call in sorted(allowed_calls - expected_calls):
        faults.append(f"{call[0]} may call {call[1]} on {GRPC_PORT}, which it should not")
    for call in sorted(expected_calls - allowed_calls):
        faults.append(f"{call[0]} cannot call {call[1]} on {GRPC_PORT}, which it needs")

    public = {
        name for name, labels in workloads.items()
        if direction_allows(policies, "Ingress", labels, None, GRPC_PORT)
    }
    if public != {"gateway"}:
        faults.append(f"reachable from outside the namespace: {sorted(public)}, "
                      "expected the gateway only")

    database_users = {
        name for name, labels in workloads.items()
        if egress_outside_allowed(policies, labels, POSTGRES_PORT)
    }
    if database_users != (services - {"gateway"}) | migrations:
        faults.append(f"may reach PostgreSQL: {sorted(database_users)}, expected every "
                      "service but the gateway, and the migrations Jobs")

    for fault in faults:
        print(f"FLOW {os.path.basename(path)}: {fault}")
    if not faults:
        print(f"   {os.path.basename(path)}: {len(allowed_calls)} calls inside the namespace, "
              f"public: gateway, PostgreSQL: {len(database_users)} workloads")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
