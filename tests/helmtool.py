"""Render helm/dandihub offline: helm itself, with stand-ins for the two dependency charts.

Chart repositories cannot be reached here, so `helm dependency build` cannot fetch Zero to
JupyterHub 4.4.0 or Dask Gateway 2026.3.0. `chart_with_stand_ins` copies the chart to a
temporary folder and puts a stand-in for each dependency in its ``charts/`` (where
`helm dependency build` would put the real ones; Chart.yaml is used unchanged). Each
stand-in has the dependency's name and version and its REAL ``values.yaml`` and schema from
``../shared/schemas`` (read at test time, never copied into the repository), so Helm
coalesces our values with the real defaults and validates them against the real schema,
exactly as on install.

What the stand-ins render (minimal templates written below, NOT the real ones):

- jupyterhub: the Secret ``hub`` with what the real hub Secret carries that the hub's
  configuration reads (``values.yaml``: the chart's Chart/Release/Values as the real one
  stores them; ``hub.services.<name>.apiToken`` for each of hub.services; the cookie secret
  and CryptKeeper keys as placeholders); the ``hub`` Deployment's pod with the parts our
  values set (image, security contexts, resources, extraEnv, extraVolumes/Mounts next to the
  real secret and database mounts); the ``hub`` Service with extraPorts; and the hub and
  singleuser NetworkPolicies in the shape of the real ones (pod selectors, our extra
  ingress/egress rules, DNS, and the non-private-IP rule with its cloud metadata exception).
- dask-gateway: a ConfigMap ``api-<fullname>`` with its coalesced values.

They do NOT render the proxy, user-scheduler, image pullers, RBAC, ingress/TLS, PVCs, or the
gateway's deployments and CRDs, nor do they run Zero to JupyterHub's jupyterhub_config.py:
what that file sets before our extraConfig is emulated in tests/test_chart.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from .paths import REPO, SHARED
from .pinned_tools import HELM, tool_env

CHART = REPO / "helm" / "dandihub"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
SCHEMAS = SHARED / "schemas"
DEPENDENCIES = {"jupyterhub": "4.4.0", "dask-gateway": "2026.3.0"}
K8S_VERSION = "1.33.0"


class HelmError(RuntimeError):
    pass


def schema_dir(name: str) -> Path:
    return SCHEMAS / f"{name}-{DEPENDENCIES[name]}"


def real_schema(name: str) -> dict:
    """The dependency's values schema (YAML in ../shared, as in its source repository)."""
    return yaml.safe_load((schema_dir(name) / "values.schema.yaml").read_text())


def real_defaults(name: str) -> dict:
    return yaml.safe_load((schema_dir(name) / "values.yaml").read_text())


JUPYTERHUB_TEMPLATES = {
    "hub-secret.yaml": """\
apiVersion: v1
kind: Secret
metadata:
  name: hub
  labels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
type: Opaque
stringData:
  values.yaml: |
    {{- pick . "Chart" "Release" "Values" | toYaml | nindent 4 }}
  hub.config.JupyterHub.cookie_secret: stand-in-cookie-secret
  hub.config.CryptKeeper.keys: stand-in-crypt-key
  {{- range $name, $service := .Values.hub.services }}
  hub.services.{{ $name }}.apiToken: {{ printf "stand-in-token-%s" $name | quote }}
  {{- end }}
""",
    "hub-deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hub
  labels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
  template:
    metadata:
      labels:
        app: jupyterhub
        component: hub
        release: {{ .Release.Name }}
        hub.jupyter.org/network-access-proxy-api: "true"
        hub.jupyter.org/network-access-proxy-http: "true"
        hub.jupyter.org/network-access-singleuser: "true"
    spec:
      {{- with .Values.hub.podSecurityContext }}
      securityContext: {{- toYaml . | nindent 8 }}
      {{- end }}
      volumes:
        - name: config
          configMap: {name: hub}
        - name: secret
          secret: {secretName: hub}
        {{- if eq .Values.hub.db.type "sqlite-pvc" }}
        - name: pvc
          persistentVolumeClaim: {claimName: hub-db-dir}
        {{- end }}
        {{- with .Values.hub.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      containers:
        - name: hub
          image: {{ .Values.hub.image.name }}:{{ .Values.hub.image.tag }}
          args: [jupyterhub, --config, /usr/local/etc/jupyterhub/jupyterhub_config.py, --upgrade-db]
          {{- with .Values.hub.containerSecurityContext }}
          securityContext: {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .Values.hub.resources }}
          resources: {{- toYaml . | nindent 12 }}
          {{- end }}
          env:
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - name: CONFIGPROXY_AUTH_TOKEN
              valueFrom: {secretKeyRef: {name: hub, key: hub.config.ConfigurableHTTPProxy.auth_token}}
            {{- range $name, $value := .Values.hub.extraEnv }}
            - name: {{ $name }}
              {{- if kindIs "map" $value }}
              {{- toYaml $value | nindent 14 }}
              {{- else }}
              value: {{ $value | quote }}
              {{- end }}
            {{- end }}
          volumeMounts:
            - {name: config, mountPath: /usr/local/etc/jupyterhub/jupyterhub_config.py, subPath: jupyterhub_config.py}
            - {name: secret, mountPath: /usr/local/etc/jupyterhub/secret/}
            {{- if eq .Values.hub.db.type "sqlite-pvc" }}
            - {name: pvc, mountPath: /srv/jupyterhub}
            {{- end }}
            {{- with .Values.hub.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - {name: http, containerPort: 8081}
""",
    "hub-service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: hub
  labels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
spec:
  type: {{ .Values.hub.service.type }}
  selector: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
  ports:
    - {name: hub, port: 8081, targetPort: http}
    {{- with .Values.hub.service.extraPorts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
""",
    "netpol.yaml": """\
{{- define "standin.egress" -}}
{{- $rules := .rules -}}
{{- with .extra }}
{{- toYaml . }}
{{- end }}
{{- if $rules.dnsPortsKubeSystemNamespace }}
- to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
{{- end }}
{{- if $rules.nonPrivateIPs }}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          - 10.0.0.0/8
          - 172.16.0.0/12
          - 192.168.0.0/16
          {{- if not $rules.cloudMetadataServer }}
          - {{ .metadataIP }}/32
          {{- end }}
{{- end }}
{{- if $rules.privateIPs }}
- to:
    - ipBlock: {cidr: 10.0.0.0/8}
    - ipBlock: {cidr: 172.16.0.0/12}
    - ipBlock: {cidr: 192.168.0.0/16}
{{- end }}
{{- if $rules.cloudMetadataServer }}
- to:
    - ipBlock: {cidr: {{ .metadataIP }}/32}
{{- end }}
{{- end }}
{{- $ip := .Values.singleuser.cloudMetadata.ip }}
{{- if .Values.hub.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: hub
spec:
  podSelector:
    matchLabels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {hub.jupyter.org/network-access-hub: "true"}
      ports: [{port: http}]
    {{- with .Values.hub.networkPolicy.ingress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    {{- include "standin.egress" (dict "rules" .Values.hub.networkPolicy.egressAllowRules "extra" .Values.hub.networkPolicy.egress "metadataIP" $ip) | nindent 4 }}
{{- end }}
{{- if .Values.singleuser.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: singleuser
spec:
  podSelector:
    matchLabels: {app: jupyterhub, component: singleuser-server, release: {{ .Release.Name }}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {hub.jupyter.org/network-access-singleuser: "true"}
      ports: [{port: notebook-port}]
    {{- with .Values.singleuser.networkPolicy.ingress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - to:
        - podSelector:
            matchLabels: {app: jupyterhub, component: hub, release: {{ .Release.Name }}}
      ports: [{port: 8081}]
    {{- include "standin.egress" (dict "rules" .Values.singleuser.networkPolicy.egressAllowRules "extra" .Values.singleuser.networkPolicy.egress "metadataIP" $ip) | nindent 4 }}
{{- end }}
""",
}

DASK_GATEWAY_TEMPLATES = {
    "configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: api-{{ .Values.fullnameOverride | default (printf "%s-dask-gateway" .Release.Name) }}
data:
  values.yaml: |
    {{- toYaml .Values | nindent 4 }}
""",
}


def write_stand_in(dest: Path, name: str, templates: dict[str, str]) -> Path:
    """A chart named and versioned like the dependency, with its real values and schema."""
    chart = dest / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2",
        "name": name,
        "version": DEPENDENCIES[name],
        "description": f"Offline stand-in for {name} {DEPENDENCIES[name]} (tests/helmtool.py)",
    }))
    source = schema_dir(name)
    shutil.copyfile(source / "values.yaml", chart / "values.yaml")
    (chart / "values.schema.json").write_text(json.dumps(real_schema(name), indent=1))
    for file, text in templates.items():
        (chart / "templates" / file).write_text(text)
    return chart


def chart_with_stand_ins(dest: Path) -> Path:
    """helm/dandihub copied to ``dest`` with the stand-in dependencies in its charts/."""
    missing = [str(schema_dir(n)) for n in DEPENDENCIES if not schema_dir(n).is_dir()]
    if missing:
        raise FileNotFoundError(", ".join(missing))
    chart = dest / "dandihub"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts", "examples", "*.tgz"))
    charts = chart / "charts"
    charts.mkdir()
    write_stand_in(charts, "jupyterhub", JUPYTERHUB_TEMPLATES)
    write_stand_in(charts, "dask-gateway", DASK_GATEWAY_TEMPLATES)
    return chart


class Helm:
    """helm (pinned, or from PATH) with its caches and configuration in ``home``."""

    def __init__(self, home: Path):
        self.binary = str(HELM.path())
        self.env = tool_env(home)

    def run(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, check=False, timeout=timeout
        )
        if result.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result.stdout

    def version(self) -> str:
        return self.run("version", "--short").strip()

    def lint(self, chart: Path, values: list[Path]) -> str:
        args = ["lint", "--strict", str(chart), "--kube-version", K8S_VERSION]
        for v in values:
            args += ["-f", str(v)]
        return self.run(*args)

    def template(self, chart: Path, values: list[Path], release: str = "dandihub",
                 namespace: str = "dandihub", extra: tuple[str, ...] = ()) -> list[dict]:
        args = ["template", release, str(chart), "--namespace", namespace,
                "--kube-version", K8S_VERSION, *extra]
        for v in values:
            args += ["-f", str(v)]
        return [d for d in yaml.safe_load_all(self.run(*args)) if d]


def by_kind(manifests: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in manifests:
        counts[m["kind"]] = counts.get(m["kind"], 0) + 1
    return dict(sorted(counts.items()))


def find(manifests: list[dict], kind: str, name: str) -> dict:
    for m in manifests:
        if m["kind"] == kind and m["metadata"]["name"] == name:
            return m
    raise KeyError(f"no {kind} {name} among {[(m['kind'], m['metadata']['name']) for m in manifests]}")


def stand_in_values(manifests: list[dict]) -> dict[str, dict]:
    """The values each dependency received (coalesced by Helm), from the stand-ins' output."""
    hub_secret = find(manifests, "Secret", "hub")
    values = {"jupyterhub": yaml.safe_load(hub_secret["stringData"]["values.yaml"])["Values"]}
    for m in manifests:
        if m["kind"] == "ConfigMap" and m["metadata"]["name"].startswith("api-"):
            values["dask-gateway"] = yaml.safe_load(m["data"]["values.yaml"])
    return values
