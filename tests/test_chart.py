"""helm/dandihub, rendered offline for every example deployment.

Real: helm (pinned, tests/pinned_tools.py) lints and renders the chart; Helm coalesces our
values with the dependencies' REAL defaults and validates them against their REAL schemas
(../shared/schemas, also checked here with jsonschema); every manifest is validated with
kubernetes-validate --strict (Kubernetes 1.33); the Settings the chart renders are loaded by
a real `jupyterhub.app.JupyterHub`, which constructs the real authenticator and the real
`PodSpawner` (KubeSpawner, ``_mock=True``: there is no API server), and each profile's pod is
rendered and validated.

Stand-ins: the two dependency charts (see tests/helmtool.py for exactly what they render),
and `z2jh_config`, which sets what Zero to JupyterHub 4.4.0's jupyterhub_config.py sets
before it runs hub.extraConfig, for every setting our configuration also touches. Paths the
pod would mount (/usr/local/etc/dandihub/...) are files in a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import fields
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dandihub.config import Settings, schema_text
from traitlets.config import Config

from .helmtool import (
    CHART,
    EXAMPLES,
    K8S_VERSION,
    Helm,
    HelmError,
    by_kind,
    chart_with_stand_ins,
    find,
    real_schema,
    schema_dir,
    stand_in_values,
)
from .pinned_tools import ToolUnavailable

CASES = {"values.yaml": []} | {p.name: [p] for p in EXAMPLES}
MOUNT = "/usr/local/etc/dandihub"  # where the hub pod sees the settings and secrets
METADATA_IP = "169.254.169.254"

# Settings fields the chart computes (never a deployer's value) and those that only mean
# something in embedded mode. Every other field must be in values.schema.json.
CHART_FIELDS = {
    "spawner", "data_dir", "base_url", "usage_port", "usage_url", "homes_root",
    "shared_data_claim", "dask_gateway_address", "dask_gateway_proxy_address",
    "dask_gateway_public_address", "github_client_secret_file",
}
EMBEDDED_ONLY = {"ip", "port", "hub_port", "proxy_api_port", "proxy_command",
                 "keep_servers_on_restart",  # always on with the kubernetes spawner
                 "isolation", "shared_account_users", "user_python",  # pods isolate users
                 # secrets never go into values: they come from the dandihub-secrets volume
                 "github_client_secret"}


def skip_without_shared() -> None:
    for name in ("jupyterhub", "dask-gateway"):
        if not schema_dir(name).is_dir():
            pytest.skip(f"{schema_dir(name)} is absent: the chart renders only with the real "
                        "values and schemas of its dependencies (../shared beside the repo)")


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> Helm:
    try:
        return Helm(tmp_path_factory.mktemp("helm-home"))
    except ToolUnavailable as e:
        pytest.skip(f"no helm: {e}")


@pytest.fixture(scope="session")
def chart(tmp_path_factory) -> Path:
    skip_without_shared()
    return chart_with_stand_ins(tmp_path_factory.mktemp("chart"))


_rendered: dict[str, list[dict]] = {}


@pytest.fixture
def render(helm, chart):
    """case -> manifests (rendered once per session)."""

    def rendered(case: str) -> list[dict]:
        if case not in _rendered:
            _rendered[case] = helm.template(chart, CASES[case])
        return _rendered[case]

    return rendered


def values_of(case: str) -> dict:
    """Our values for ``case`` (values.yaml, then the example), merged as Helm does."""
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in CASES[case]:
        merged = coalesce(merged, yaml.safe_load(path.read_text()))
    return merged


def coalesce(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = value
    return out


def pod_specs(manifests: list[dict]):
    """(where, pod spec) of every workload."""
    for m in manifests:
        spec = m.get("spec", {})
        if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{m['kind']}/{m['metadata']['name']}", spec["template"]["spec"]
        elif m["kind"] == "CronJob":
            yield f"CronJob/{m['metadata']['name']}", spec["jobTemplate"]["spec"]["template"]["spec"]


# --- helm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_strict(helm, chart, case):
    out = helm.lint(chart, CASES[case])
    assert "0 chart(s) failed" in out, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize("case", CASES)
def test_every_manifest_is_valid_kubernetes_1_33(render, case, artifacts):
    manifests = render(case)
    for m in manifests:
        kubernetes_validate.validate(m, K8S_VERSION, strict=True)
    (artifacts / f"chart-{case}.txt").write_text(
        f"helm template of helm/dandihub with {case} (dependencies are offline stand-ins, "
        f"tests/helmtool.py)\n{json.dumps(by_kind(manifests))}\n\n"
        + yaml.safe_dump_all(manifests, sort_keys=False)
    )


@pytest.mark.parametrize("case", CASES)
def test_dependency_values_validate_against_their_real_schemas(render, case):
    received = stand_in_values(render(case))
    jsonschema.Draft7Validator(real_schema("jupyterhub")).validate(received["jupyterhub"])
    if values_of(case)["dask-gateway"]["enabled"]:
        jsonschema.Draft7Validator(real_schema("dask-gateway")).validate(received["dask-gateway"])
    else:
        assert "dask-gateway" not in received


@pytest.mark.parametrize("case", CASES)
def test_our_values_validate_against_our_schema(case):
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(values_of(case))


def test_schema_describes_every_value_and_covers_every_setting():
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["dandihub"]
    ours = set(schema["properties"])
    chart_keys = {"secrets", "sharedData", "retentionReport"}
    settings = {f.name for f in fields(Settings)}
    assert ours - chart_keys <= settings, f"not Settings fields: {ours - chart_keys - settings}"
    uncovered = settings - ours - CHART_FIELDS - EMBEDDED_ONLY
    assert not uncovered, (
        f"Settings fields {sorted(uncovered)} are neither in values.schema.json nor set by the "
        "chart: add them to helm/dandihub (values.yaml, values.schema.json, README)"
    )

    def undocumented(node, path):
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub and not path.endswith("archives"):
                yield f"{path}.{key}"
            yield from undocumented(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from undocumented(node["items"], f"{path}[]")

    assert list(undocumented(schema, "dandihub")) == []


def test_the_schema_is_generated_from_settings():
    """values.schema.json's Settings keys are what dandihub.config.Settings describes."""
    path = CHART / "values.schema.json"
    assert path.read_text() == schema_text(path), (
        "helm/dandihub/values.schema.json differs from dandihub.config.Settings: run make schema")
    scopes = {f.name: f.metadata["scope"] for f in fields(Settings)}
    assert {n for n, s in scopes.items() if s == "chart"} == CHART_FIELDS
    assert {n for n, s in scopes.items() if s == "embedded"} == EMBEDDED_ONLY


def test_values_yaml_documents_every_setting_default():
    """values.yaml spells out every deployer setting, so operators see what they can change."""
    defaults = Settings()
    values = yaml.safe_load((CHART / "values.yaml").read_text())["dandihub"]
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["dandihub"]
    for key in schema["properties"]:
        assert key in values, f"dandihub.{key} is missing from values.yaml"
    # where the chart departs from the embedded-mode defaults, on purpose
    departures = {k for k in values if hasattr(defaults, k) and values[k] != getattr(defaults, k)}
    assert departures == {"start_timeout", "images", "profiles"}, departures


# --- what the chart renders ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_objects_of_each_deployment(render, case):
    values = values_of(case)
    d = values["dandihub"]
    counts = by_kind(render(case))
    gateway = values["dask-gateway"]["enabled"]
    report = d["retentionReport"]["enabled"]
    assert counts.get("CronJob", 0) == int(report)
    shared = d["sharedData"]
    made_pv = shared["enabled"] and not shared.get("existingClaim")
    assert counts.get("PersistentVolume", 0) == counts.get("PersistentVolumeClaim", 0) == int(made_pv)
    # hub + singleuser (stand-in renderings of Zero to JupyterHub's), dask clusters, report
    assert counts["NetworkPolicy"] == 2 + int(gateway) + int(report)
    creates_secret = d["secrets"]["create"] and (d["secrets"].get("archives") or
                                                  d["secrets"].get("github_client_secret"))
    assert counts["Secret"] == 1 + int(bool(creates_secret))


@pytest.mark.parametrize("case", CASES)
def test_the_hub_mounts_the_settings_it_loads(render, case):
    manifests = render(case)
    settings_map = find(manifests, "ConfigMap", "dandihub-settings")
    settings = Settings.from_dict(json.loads(settings_map["data"]["settings.json"]))
    assert settings.spawner == "kubernetes"
    hub = find(manifests, "Deployment", "hub")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in hub["volumes"]}
    mounts = {m["name"]: m for m in hub["containers"][0]["volumeMounts"]}
    assert volumes["dandihub-settings"]["configMap"]["name"] == "dandihub-settings"
    assert mounts["dandihub-settings"]["mountPath"] == f"{MOUNT}/config"
    assert volumes["dandihub-secrets"]["secret"]["secretName"] == "dandihub-secrets"
    assert mounts["dandihub-secrets"]["mountPath"] == f"{MOUNT}/secrets"
    received = stand_in_values(manifests)["jupyterhub"]
    extra = received["hub"]["extraConfig"]
    assert extra == {"00-dandihub": "from dandihub.config import load_config; "
                                    f'c.merge(load_config("{MOUNT}/config/settings.json"))'}
    assert "authenticator_class" not in received["hub"]["config"]["JupyterHub"]
    # every secret file the settings name is a key of the Secret the chart makes
    secret_files = [a.get(k) for a in settings.archives for k in ("client_secret_file",
                                                                 "service_token_file")]
    secret_files += [settings.github_client_secret_file]
    keys = [Path(f).name for f in secret_files if f]
    assert all(f.startswith(f"{MOUNT}/secrets/") for f in secret_files if f)
    if values_of(case)["dandihub"]["secrets"]["create"] and keys:
        assert set(keys) <= set(find(manifests, "Secret", "dandihub-secrets")["stringData"])


@pytest.mark.parametrize("case", CASES)
def test_security_of_the_rendered_workloads(render, case):
    manifests = render(case)
    for where, spec in pod_specs(manifests):
        security = spec.get("securityContext", {})
        assert security.get("runAsNonRoot") is True, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            cs = c.get("securityContext", {})
            assert not cs.get("privileged"), f"{where}/{c['name']} is privileged"
            assert cs.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}"
            assert "ALL" in cs.get("capabilities", {}).get("drop", []), f"{where}/{c['name']}"
            assert not cs.get("capabilities", {}).get("add"), f"{where}/{c['name']} adds capabilities"
            assert cs.get("runAsUser", security.get("runAsUser", 1)) != 0, f"{where}/{c['name']} runs as root"
            limits = c.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= set(limits), f"{where}/{c['name']} has no CPU/memory limit"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
    for m in manifests:
        if m["kind"] in ("Service",):
            assert m["spec"].get("type", "ClusterIP") == "ClusterIP", m["metadata"]["name"]


@pytest.mark.parametrize("case", CASES)
def test_network_policies_keep_pods_off_the_cloud_metadata_server(render, case):
    manifests = render(case)
    values = stand_in_values(manifests)["jupyterhub"]
    singleuser = values["singleuser"]
    # no privileged iptables init container: the singleuser NetworkPolicy blocks it
    assert singleuser["cloudMetadata"]["blockWithIptables"] is False
    assert singleuser["networkPolicy"]["enabled"] is True
    assert singleuser["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    assert singleuser["networkPolicy"]["egressAllowRules"]["privateIPs"] is False
    for component in ("hub", "proxy"):
        policy = values[component]["networkPolicy"] if component == "hub" else \
            values["proxy"]["chp"]["networkPolicy"]
        assert policy["enabled"] is True, component
    policies = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}
    assert {"hub", "singleuser"} <= set(policies)
    if values_of(case)["dask-gateway"]["enabled"]:
        dask = policies["dandihub-dask-clusters"]["spec"]
        assert dask["policyTypes"] == ["Egress"]
        selector = dask["podSelector"]
        assert selector["matchExpressions"][0]["values"] == ["dask-scheduler", "dask-worker"]
    for name in ("singleuser", "dandihub-dask-clusters"):
        if name not in policies:
            continue
        for rule in policies[name]["spec"]["egress"]:
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block and block["cidr"] == "0.0.0.0/0":
                    assert f"{METADATA_IP}/32" in block["except"], name
                elif block:
                    assert not block["cidr"].startswith("169.254"), name


@pytest.mark.parametrize("case", CASES)
def test_dask_gateway_sits_behind_the_hub_on_the_users_image(render, case):
    values = values_of(case)
    manifests = render(case)
    settings = json.loads(find(manifests, "ConfigMap", "dandihub-settings")["data"]["settings.json"])
    if not values["dask-gateway"]["enabled"]:
        assert settings["dask_gateway_address"] == ""
        services = stand_in_values(manifests)["jupyterhub"]["hub"]["services"]
        assert services.get("dask-gateway", {}).get("url", "") == ""  # no route
        return
    gateway = stand_in_values(manifests)["dask-gateway"]
    hub = stand_in_values(manifests)["jupyterhub"]
    assert gateway["gateway"]["prefix"] == "/services/dask-gateway"
    assert gateway["gateway"]["auth"]["type"] == "jupyterhub"
    token = gateway["gateway"]["auth"]["jupyterhub"]
    assert (token["apiTokenFromSecretName"], token["apiTokenFromSecretKey"]) == (
        "hub", "hub.services.dask-gateway.apiToken")
    assert "hub.services.dask-gateway.apiToken" in find(manifests, "Secret", "hub")["stringData"]
    assert hub["hub"]["services"]["dask-gateway"]["url"] == "http://traefik-dask-gateway"
    assert settings["dask_gateway_address"] == "http://traefik-dask-gateway/services/dask-gateway"
    assert settings["dask_gateway_proxy_address"] == "gateway://traefik-dask-gateway:80"
    # workers and schedulers run the default user image, unprivileged and limited
    backend = gateway["gateway"]["backend"]
    image = f"{backend['image']['name']}:{backend['image']['tag']}"
    user_image = f"{hub['singleuser']['image']['name']}:{hub['singleuser']['image']['tag']}"
    assert image == user_image == settings["images"][0]["image"]
    for role in ("scheduler", "worker"):
        part = backend[role]
        assert part["cores"]["limit"] and part["memory"]["limit"], role
        assert part["extraPodConfig"]["securityContext"]["runAsNonRoot"] is True
        assert part["extraPodConfig"]["automountServiceAccountToken"] is False
        container = part["extraContainerConfig"]["securityContext"]
        assert container["privileged"] is False and container["allowPrivilegeEscalation"] is False
    # the gateway's extra configuration sets options that exist
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig

    c = Config()
    for code in gateway["gateway"]["extraConfig"].values():
        exec(code, {"c": c})  # noqa: S102 -- the chart's config, run as the gateway runs it
    assert set(c["ClusterConfig"]) <= set(KubeClusterConfig.class_trait_names(config=True))


@pytest.mark.parametrize("problem, message", [
    ({"jupyterhub": {"cull": {"enabled": True}}}, "cull.enabled must stay false"),
    ({"jupyterhub": {"singleuser": {"cloudMetadata": {"blockWithIptables": True}}}},
     "privileged container"),
    ({"jupyterhub": {"hub": {"extraVolumes": [{"name": "mine", "emptyDir": {}}]}}},
     'must keep the volume "dandihub-settings"'),
    ({"dandihub": {"authenticator": "dandi-oauth",
                   "archives": [{"name": "DANDI", "api_url": "https://api.dandiarchive.org/api"}]}},
     "client_id"),
    ({"dandihub": {"archives": [{"name": "DANDI", "api_url": "https://api.dandiarchive.org/api",
                                 "client_secret": "in plain sight"}]}},
     "client_secret"),
    ({"dandihub": {"retentionReport": {"delete": True}}}, "needs dandihub.home_claim"),
    ({"dandihub": {"images": [{"slug": "standard", "display_name": "S", "image": "x:latest"}]}},
     "dandihub.images.0.image: Must not validate"),
    ({"jupyterhub": {"singleuser": {"storage": {"type": "dynamic"}}}}, "storage.type must be none"),
    ({"jupyterhub": {"hub": {"nonsense": 1}}}, "nonsense"),
])
def test_the_chart_refuses_misconfigurations(helm, chart, tmp_path, problem, message):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(problem))
    with pytest.raises(HelmError, match=message.replace("(", r"\(")):
        helm.template(chart, [values])


# --- the hub configuration, loaded by a real JupyterHub -----------------------------------


def z2jh_config(values: dict, secret: dict[str, str], namespace: str) -> Config:
    """What Zero to JupyterHub 4.4.0's jupyterhub_config.py sets before hub.extraConfig, for
    the settings our configuration also touches (its own logic, condensed)."""
    hub, singleuser = values["hub"], values["singleuser"]
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
    c.ConfigurableHTTPProxy.should_start = False
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.db_url = {"sqlite-pvc": "sqlite:///jupyterhub.sqlite",
                           "sqlite-memory": "sqlite://"}.get(hub["db"]["type"], hub["db"].get("url"))
    c.JupyterHub.base_url = hub["baseUrl"]
    c.JupyterHub.concurrent_spawn_limit = hub["concurrentSpawnLimit"]
    c.JupyterHub.hub_bind_url = "http://:8081"
    c.JupyterHub.hub_connect_url = "http://hub:8081"
    c.KubeSpawner.namespace = namespace
    c.KubeSpawner.common_labels = {"app": "jupyterhub", "heritage": "jupyterhub",
                                   "release": "dandihub"}
    c.Spawner.consecutive_failure_limit = hub["consecutiveFailureLimit"]
    for trait, key in [("start_timeout", "startTimeout"), ("uid", "uid"), ("fs_gid", "fsGid"),
                       ("extra_labels", "extraLabels"), ("environment", "extraEnv"),
                       ("node_selector", "nodeSelector"), ("profile_list", "profileList"),
                       ("events_enabled", "events"), ("init_containers", "initContainers"),
                       ("extra_pod_config", "extraPodConfig")]:
        if singleuser.get(key) is not None:
            c.KubeSpawner[trait] = singleuser[key]
    for trait, key in [("mem_guarantee", "guarantee"), ("mem_limit", "limit")]:
        if singleuser["memory"].get(key) is not None:
            c.KubeSpawner[trait] = singleuser["memory"][key]
    c.KubeSpawner.image = f"{singleuser['image']['name']}:{singleuser['image']['tag']}"
    c.KubeSpawner.allow_privilege_escalation = singleuser["allowPrivilegeEscalation"]
    if values["scheduling"]["userScheduler"]["enabled"]:
        c.KubeSpawner.scheduler_name = "user-scheduler"
    tolerations = values["scheduling"]["userPods"]["tolerations"] + singleuser["extraTolerations"]
    if tolerations:
        c.KubeSpawner.tolerations = tolerations
    assert singleuser["storage"]["type"] == "none"  # else Zero to JupyterHub adds home volumes
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    assert not values["cull"]["enabled"]  # else Zero to JupyterHub adds its own culler
    for name, service in values["hub"]["services"].items():
        service = {**service, "name": name, "api_token": secret[f"hub.services.{name}.apiToken"]}
        service.pop("apiToken", None)
        c.JupyterHub.services.append(service)
    for name, role in values["hub"]["loadRoles"].items():
        c.JupyterHub.load_roles.append({**role, "name": name})
    c.Spawner.cmd = singleuser["cmd"]
    if singleuser.get("defaultUrl"):
        c.Spawner.default_url = singleuser["defaultUrl"]
    assert not singleuser["cloudMetadata"]["blockWithIptables"]  # else a privileged init container
    c.JupyterHub.cookie_secret = secret["hub.config.JupyterHub.cookie_secret"].encode().hex()
    c.CryptKeeper.keys = [bytes(32).hex()]
    for app, cfg in values["hub"]["config"].items():
        c[app].update(cfg)
    return c


class User:
    """What KubeSpawner and the pre-spawn hook read of a JupyterHub user."""

    def __init__(self, name, archive_url, admin=True):
        self.name, self.id, self.url, self.admin = name, 7, f"/user/{name}/", admin
        self.groups = []
        self._auth_state = {"dandi_api_key": "0" * 40, "dandi_api_url": archive_url,
                            "dandi_user": {"username": name, "name": "Ann Neuro"}}

    async def get_auth_state(self):
        return self._auth_state


def hub_config(manifests: list[dict], folder: Path) -> Config:
    """The hub pod's configuration: Zero to JupyterHub's, then hub.extraConfig, with the
    ConfigMap and Secret the chart mounts written to ``folder`` instead of MOUNT."""
    received = stand_in_values(manifests)["jupyterhub"]
    secret = find(manifests, "Secret", "hub")["stringData"]
    settings = find(manifests, "ConfigMap", "dandihub-settings")["data"]["settings.json"]
    (folder / "config").mkdir()
    (folder / "config" / "settings.json").write_text(settings.replace(MOUNT, str(folder)))
    (folder / "secrets").mkdir()
    mine = next((m for m in manifests if m["metadata"]["name"] == "dandihub-secrets"), None)
    for key, value in (mine or {}).get("stringData", {}).items():
        (folder / "secrets" / key).write_text(value)
    for path in json.loads(settings).get("archives", []):  # operator-made Secret: stand-ins
        for key in ("client_secret_file", "service_token_file"):
            if key in path and not (folder / "secrets" / Path(path[key]).name).exists():
                (folder / "secrets" / Path(path[key]).name).write_text(f"stand-in-{key}")
    github = json.loads(settings).get("github_client_secret_file")
    if github and not (folder / "secrets" / Path(github).name).exists():
        (folder / "secrets" / Path(github).name).write_text("stand-in-github-secret")

    c = z2jh_config(received, secret, namespace="dandihub")
    for _, code in sorted(received["hub"]["extraConfig"].items()):
        exec(code.replace(MOUNT, str(folder)), {"c": c})  # noqa: S102 -- as Z2JH runs it
    return c


@pytest.mark.parametrize("case", CASES)
async def test_the_hub_runs_the_configuration_the_chart_renders(render, case, tmp_path, kubeconfig):
    from dandihub.auth import DandiOAuthenticator
    from dandihub.spawner import PodSpawner
    from jupyterhub.app import JupyterHub
    from kubernetes_asyncio.client import ApiClient

    manifests = render(case)
    settings = Settings.from_dict(json.loads(
        find(manifests, "ConfigMap", "dandihub-settings")["data"]["settings.json"]))
    received = stand_in_values(manifests)["jupyterhub"]
    app = JupyterHub(config=hub_config(manifests, tmp_path))

    # Zero to JupyterHub runs the proxy and the database: our settings leave them alone
    overridden = "dandihub.config.build_config overrides Zero to JupyterHub's %s on Kubernetes"
    assert app.hub_bind_url == "http://:8081", overridden % "hub_bind_url"
    assert app.hub_connect_url == "http://hub:8081"
    assert app.config.ConfigurableHTTPProxy.should_start is False
    assert app.config.ConfigurableHTTPProxy.api_url == "http://proxy-api:8001", \
        overridden % "proxy API URL"
    assert app.db_url == "sqlite:///jupyterhub.sqlite", overridden % "db_url"
    assert app.base_url == received["hub"]["baseUrl"]

    # the authenticator dandihub.authenticator names, with its archives and their secrets
    authenticator = app.authenticator_class(parent=app)
    expected = {"apikey": "APIKeyAuthenticator", "dandi-oauth": "DandiOAuthenticator",
                "github": "DandiGitHubOAuthenticator"}[settings.authenticator]
    assert type(authenticator).__name__ == expected
    assert authenticator.enable_auth_state
    assert authenticator.admin_users == set(settings.admin_users)
    if settings.authenticator != "apikey":
        archives = authenticator.archive_list  # reads the secret files
        assert [a.name for a in archives] == [a["name"] for a in settings.archives]
        if isinstance(authenticator, DandiOAuthenticator):
            assert all(a.client_id and a.client_secret for a in archives)
        else:
            assert all(a.service_token for a in archives)
            assert authenticator.client_id == settings.github_client_id
            assert authenticator.client_secret  # from github-client-secret

    # services: ours (culler, usage page) next to those the chart registers through
    # Zero to JupyterHub (the gateway, the report's identity) with their tokens
    services = {s["name"]: s for s in app.services}
    assert ("idle-culler" in services) == settings.cull_enabled
    assert services["usage"]["url"] == "http://hub:10101"
    assert "--ip=0.0.0.0" in services["usage"]["command"]
    for name in received["hub"]["services"]:
        assert name in services, f"build_config replaces the service {name} the chart registers"
        assert services[name]["api_token"] == f"stand-in-token-{name}"
    roles = {r["name"] for r in app.load_roles}
    assert set(received["hub"]["loadRoles"]) <= roles
    assert ("idle-culler" in roles) == settings.cull_enabled

    # the spawner, and each profile's pod for an admin (who sees every profile)
    assert app.spawner_class is PodSpawner
    user = User("ann-neuro", settings.archive_url)
    spawner = app.spawner_class(config=app.config, user=user, _mock=True)
    assert spawner.start_timeout == settings.start_timeout, overridden.replace(
        "overrides", "is overridden by") % "singleuser.startTimeout"
    slugs = [p["slug"] for p in spawner.profile_list(spawner)]
    assert slugs == [p["slug"] for p in settings.profiles]
    for slug in slugs:
        spawner = app.spawner_class(config=app.config, user=user, _mock=True)
        spawner.api_token = "hub-token-of-the-server"
        await spawner.run_pre_spawn_hook()
        spawner.user_options = {"profile": slug}
        await spawner.load_user_options()
        async with ApiClient() as api:
            pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
        check_user_pod(pod, settings, slug, received)


def check_user_pod(pod: dict, settings: Settings, slug: str, received: dict) -> None:
    profile = next(p for p in settings.profiles if p["slug"] == slug)
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"] + spec.get("initContainers", []):
        assert c["securityContext"]["privileged"] is False, c["name"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
    assert container["securityContext"]["runAsUser"] == 1000
    assert float(container["resources"]["limits"]["cpu"]) == profile["cpu_limit"]
    images = {i["slug"]: i["image"] for i in settings.images}
    assert container["image"] == images[(profile.get("images") or [
        i["slug"] for i in settings.images if i.get("gpu", False) == bool(profile.get("gpus"))])[0]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DANDI_API_URL"] == settings.archive_url
    assert env["DANDILAB_ACTIVITY_INTERVAL"] == str(settings.activity_interval)
    assert "DANDI_API_KEY" in env  # from the per-pod Secret
    assert env.get("DASK_GATEWAY__ADDRESS", "") == settings.dask_gateway_address
    if settings.dask_gateway_address:
        assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    volumes = {v["name"]: v for v in spec["volumes"]}
    if settings.home_claim:
        assert volumes["home"]["persistentVolumeClaim"]["claimName"] == settings.home_claim
    else:
        assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "claim-ann-neuro"
    if settings.shared_data_claim:
        assert volumes["shared-data"]["persistentVolumeClaim"] == {
            "claimName": settings.shared_data_claim, "readOnly": True}
    else:
        assert "shared-data" not in volumes
    # the user pods' tolerations of Zero to JupyterHub stay, the profile's are added
    tolerations = spec.get("tolerations", [])
    for t in received["scheduling"]["userPods"]["tolerations"] + profile.get("tolerations", []):
        assert t in tolerations
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"  # the NetworkPolicy's


# --- a security scanner over our own templates ------------------------------------------------

CHECKOV = "checkov==3.3.30"  # ~65 s and ~290 MB to install, once per machine (.cache/tools)
# Checkov findings we accept, and why. Anything else fails the test.
ACCEPTED = {
    "CKV_K8S_21": "helm template leaves metadata.namespace to `helm install -n`",
    "CKV_K8S_43": "images are pinned by tag; a digest is the operator's choice",
    "CKV_K8S_15": "IfNotPresent with pinned tags: no registry round trip per job",
    "CKV_K8S_40": "uid 1000 is the Jupyter images' notebook user; homes belong to it",
    "CKV_K8S_35": "`dandihub usage` reads the hub token from JUPYTERHUB_API_TOKEN, as "
                  "JupyterHub services do",
}


@pytest.mark.slow
def test_checkov_finds_nothing_we_have_not_accepted(render, tmp_path, artifacts):
    from .pinned_tools import venv_tool

    try:
        checkov = venv_tool("checkov", CHECKOV)
    except ToolUnavailable as e:
        pytest.skip(f"no checkov: {e}")
    folder = tmp_path / "manifests"
    folder.mkdir()
    for case in CASES:
        ours = [m for m in render(case)
                if m["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "dandihub"]
        (folder / case).write_text(yaml.safe_dump_all(ours))
    result = subprocess.run(
        [str(checkov), "-d", str(folder), "--framework", "kubernetes", "--quiet", "--compact",
         "-o", "json"], capture_output=True, text=True, check=False, timeout=300,
    )
    report = json.loads(result.stdout)
    (artifacts / "checkov.json").write_text(json.dumps(report, indent=1))
    failed = report["results"]["failed_checks"] if isinstance(report, dict) else [
        c for r in report for c in r["results"]["failed_checks"]]
    unexpected = sorted({(c["check_id"], c["check_name"], c["resource"]) for c in failed
                         if c["check_id"] not in ACCEPTED})
    assert not unexpected, "\n".join(map(str, unexpected))
