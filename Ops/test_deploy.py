"""Structure checks of the deployment files (Ops/k8s, Ops/systemd) as far as this machine allows: no cluster,
no KEDA, no container runtime here. Checks: every YAML document parses and has the fields its kind needs;
selectors match template labels; every stage the broker serves by default has a Deployment and a ScaledObject;
every flag in a container's args is one `hume` accepts; every metric a ScaledObject queries is one the broker
exports; the systemd units pass `systemd-analyze verify`.

Run by Ops/test.sh after the build (it asks .build/debug/hume for its flags)."""
import os
import re
import shutil
import subprocess
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(ROOT, "Ops", "k8s")
SYSTEMD = os.path.join(ROOT, "Ops", "systemd")
HUME = os.environ.get("HUME_BIN", os.path.join(ROOT, ".build", "debug", "hume"))


def docs():
    out = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml"):
            with open(os.path.join(K8S, name)) as f:
                out += [(name, d) for d in yaml.safe_load_all(f) if d]
    return out


def default_stages():
    src = open(os.path.join(ROOT, "Broker", "BrokerConfig.swift")).read()
    m = re.search(r"defaultStages\s*=\s*\[([^\]]*)\]", src)
    return [s for s in re.findall(r'"([a-z0-9_-]+)"', m.group(1)) if not s.startswith("noop")]


def flags_of(*subcommand, program=HUME):
    out = subprocess.run([program, *subcommand, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"--[a-z0-9-]+", out))


def test_documents_are_well_formed():
    seen = set()
    for name, d in docs():
        assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), (name, d)
        key = (d["kind"], d["metadata"]["name"])
        assert key not in seen, "duplicate %s" % (key,)
        seen.add(key)
        if d["kind"] in ("Deployment", "StatefulSet"):
            spec = d["spec"]
            sel = spec["selector"]["matchLabels"]
            labels = spec["template"]["metadata"]["labels"]
            assert all(labels.get(k) == v for k, v in sel.items()), "%s: selector does not match its pods" % key[1]
            for c in spec["template"]["spec"]["containers"]:
                assert c["image"] and c["args"], key
                mounts = {m["name"] for m in c.get("volumeMounts", [])}
                vols = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
                vols |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
                assert mounts <= vols, "%s mounts undeclared volumes %s" % (key[1], mounts - vols)


def test_every_stage_has_a_deployment_and_a_scaler():
    by_kind = {}
    for _, d in docs():
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    for stage in default_stages():
        dep = by_kind["Deployment"].get("hume-" + stage)
        assert dep, "no Deployment for stage %s" % stage
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["worker", stage], args
        so = by_kind["ScaledObject"].get("hume-" + stage)
        assert so and so["spec"]["scaleTargetRef"]["name"] == "hume-" + stage, "no ScaledObject for %s" % stage
        assert 0 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    assert by_kind["StatefulSet"]["hume-broker"]["spec"]["replicas"] == 1


def test_args_are_flags_hume_accepts():
    for _, d in docs():
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        container = d["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        if container.get("command", [""])[0].endswith("/hume-gateway"):
            accepted = flags_of(args[0], program=HUME + "-gateway")
        else:
            accepted = flags_of(*args[:2]) if args[0] == "worker" else flags_of(args[0])
        for a in args:
            if a.startswith("--"):
                assert a.split("=")[0] in accepted, "%s: hume %s has no %s" % (d["metadata"]["name"], args[0], a)


def test_scalers_query_metrics_the_broker_exports():
    exported = set(re.findall(r'"(hume_[a-z_]+)', open(os.path.join(ROOT, "Broker", "Metrics.swift")).read()))
    for _, d in docs():
        if d["kind"] == "ScaledObject":
            for t in d["spec"]["triggers"]:
                for metric in re.findall(r"hume_[a-z_]+", t["metadata"]["query"]):
                    assert metric in exported, "%s queries %s, which the broker does not export" % (d["metadata"]["name"], metric)


def test_systemd_units_verify():
    if not shutil.which("systemd-analyze"):
        raise AssertionError("systemd-analyze is missing (Debian package systemd)")
    with tempfile.TemporaryDirectory() as d:
        for name in os.listdir(SYSTEMD):
            if name.endswith(".service"):
                text = open(os.path.join(SYSTEMD, name)).read().replace("/usr/local/bin/hume", HUME)
                open(os.path.join(d, name), "w").write(text)
        os.symlink(os.path.join(d, "hume-worker@.service"), os.path.join(d, "hume-worker@denoise-1.service"))
        r = subprocess.run(["systemd-analyze", "verify", "hume-broker.service", "hume-worker@denoise-1.service",
                            "hume-gateway.service"],
                           cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    for flag in re.findall(r"--[a-z0-9-]+", open(os.path.join(SYSTEMD, "hume-broker.service")).read()):
        assert flag in flags_of("broker"), "hume-broker.service passes %s, which hume broker does not accept" % flag
    gateway = subprocess.run([HUME + "-gateway", "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in re.findall(r"--[a-z0-9-]+", open(os.path.join(SYSTEMD, "hume-gateway.service")).read()):
        assert flag in set(re.findall(r"--[a-z0-9-]+", gateway)), "hume-gateway.service passes %s, which hume-gateway does not accept" % flag
