#!/usr/bin/env python3
"""Validates the deployment without a cluster, as .ci/run does:

- docker-compose.yml against the compose specification (check-jsonschema's
  vendored compose-spec schema);
- each Kubernetes overlay built with `kubectl kustomize`, every object
  validated: core kinds against the Kubernetes 1.31 OpenAPI schemas
  (kubernetes-validate, strict: an unknown field fails), the operators'
  kinds against k8s/schemas/<Kind>.json (the fields dibao-mesh uses, each
  file naming the operator version and reference it was written from);
- a policy linter (checkov's Kubernetes checks) over the built objects,
  with no failed check beyond the few skipped below, each with its reason.

Exit status 1 naming every problem found.
"""
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.31.0"
OVERLAYS = ["dev", "production"]
# checkov checks skipped, and why (the rest must pass).
SKIPPED = {
    "CKV_K8S_43": "images are pinned by tag per overlay (the registry's digest is known only after the build)",
    "CKV_K8S_35": "the database URL (with its password) reaches the service as an environment variable from a Secret, as its settings read it; keys and certificates are files",
}

problems = []


def check_compose():
    out = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        problems.append(f"docker-compose.yml: {out.stdout}{out.stderr}")
    else:
        print("docker-compose.yml: valid against the compose specification")


def build(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / overlay)], capture_output=True, text=True)
    if out.returncode != 0:
        problems.append(f"kustomize build {overlay}: {out.stderr}")
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def check_objects(overlay, docs):
    schemas = {p.stem: json.loads(p.read_text()) for p in (ROOT / "k8s" / "schemas").glob("*.json")}
    kinds = {}
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        where = f"{overlay}: {kind}/{name}"
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind in schemas:
            errors = sorted(jsonschema.Draft202012Validator(schemas[kind]).iter_errors(doc), key=lambda e: list(e.path))
            for e in errors:
                problems.append(f"{where}: {'.'.join(map(str, e.path)) or '(object)'}: {e.message}")
        else:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where}: {'.'.join(map(str, e.path)) or '(object)'}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: no schema for {doc.get('apiVersion')} {kind} (Kubernetes {K8S_VERSION}, k8s/schemas)")
    print(f"{overlay}: {len(docs)} objects validated: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))


def check_policy(overlay, docs, workdir):
    path = workdir / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    checkov = Path(sys.executable).parent / "checkov"
    out = subprocess.run(
        [str(checkov), "--quiet", "--compact", "--skip-download", "--framework", "kubernetes", "--output", "json",
         "--skip-check", ",".join(SKIPPED), "--file", str(path)],
        capture_output=True, text=True,
    )
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        problems.append(f"{overlay}: checkov gave no report: {out.stderr[-2000:]}")
        return
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    scanned = sum(r.get("summary", {}).get("resource_count", 0) for r in reports)
    if scanned < len(docs):
        problems.append(f"{overlay}: the policy linter read {scanned} of {len(docs)} objects")
    for c in failed:
        problems.append(f"{overlay}: policy {c['check_id']} ({c['check_name']}) fails for {c['resource']}")
    print(f"{overlay}: policy linter: {passed} checks passed, {len(failed)} failed, {len(SKIPPED)} skipped with reasons")


def main():
    workdir = ROOT / "target" / "deploy-check"
    workdir.mkdir(parents=True, exist_ok=True)
    check_compose()
    for overlay in OVERLAYS:
        docs = build(overlay)
        check_objects(overlay, docs)
        check_policy(overlay, docs, workdir)
    if problems:
        print(f"\n{len(problems)} problems:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("deployment: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
