"""The user pods KubeSpawner renders for DANDI Hub, without a cluster.

KubeSpawner runs for real with ``_mock=True`` (no API server exists here): the settings go
through `build_config`, the pre-spawn hook and KubeSpawner's profile handling, and each
rendered pod is checked against the Kubernetes 1.33 schema (kubernetes-validate --strict).
Only the Secret's creation talks to a stand-in of the API client.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from dandihub.authstate import DandiAuthState, DandiUser
from dandihub.config import Settings, build_config
from dandihub.profiles import DEFAULT_PROFILES, GPU_RESOURCE, load_profiles
from dandihub.spawner import PodSpawner
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.rest import ApiException

K8S_VERSION = "1.33.0"
KEY = "5e3c0ffee5e3c0ffee5e3c0ffee5e3c0ffee5e3c"
HUB_TOKEN = "hub-token-of-the-server-0123456789"
ARCHIVE = "https://api.sandbox.dandiarchive.org/api"
PROFILE_SLUGS = [p["slug"] for p in DEFAULT_PROFILES]


@pytest.fixture(autouse=True)
def _no_cluster(kubeconfig):
    """Every test here builds KubeSpawner, which loads a kubeconfig (tests/conftest.py)."""


class User:
    """What KubeSpawner and the hook read of a JupyterHub user."""

    def __init__(self, name="ann-neuro", groups=(), admin=False, auth_state=None):
        self.name, self.id, self.url, self.admin = name, 7, f"/user/{name}/", admin
        self.groups = [SimpleNamespace(name=g) for g in groups]
        self._auth_state = auth_state if auth_state is not None else {
            "dandi_api_key": KEY,
            "dandi_api_url": ARCHIVE,
            "dandi_user": {"username": name, "name": "Ann Neuro", "email": "ann@example.org"},
        }

    async def get_auth_state(self):
        return self._auth_state


async def render(settings: Settings | None = None, user: User | None = None, **options):
    """(spawner, pod as the API receives it) for ``options`` (profile, image)."""
    config = build_config(settings or Settings(spawner="kubernetes", archive_url=ARCHIVE))
    spawner = PodSpawner(config=config, user=user or User(), _mock=True)
    spawner.api_token = HUB_TOKEN  # the hub sets it before spawning
    await spawner.run_pre_spawn_hook()
    spawner.user_options = options
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        data = api.sanitize_for_serialization(pod)
    return spawner, data


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# "dandi_user" as each authenticator wrote it before dandihub.authstate (hubs keep them in
# their database), then as they all write it now.
DANDI_USERS = {
    "apikey": ({"username": "ann-neuro", "name": "Ann Neuro"}, "Ann Neuro", None),
    "dandi-oauth": ({"username": "ann-neuro", "name": "", "status": "APPROVED", "admin": False},
                    "ann-neuro", None),
    "github": ({"username": "ann-neuro", "name": "Ann Neuro", "email": None}, "Ann Neuro", None),
    "typed": (DandiUser("ann-neuro", "Ann Neuro", email="ann@example.org").to_dict(),
              "Ann Neuro", "ann@example.org"),
}


@pytest.mark.parametrize("shape", DANDI_USERS)
async def test_every_shape_of_auth_state_gives_the_server_its_identity(shape):
    dandi_user, name, email = DANDI_USERS[shape]
    state = {"dandi_api_key": KEY, "dandi_api_url": ARCHIVE, "dandi_user": dandi_user,
             "access_token": "oauthenticator's own"}
    config = build_config(Settings(spawner="kubernetes"))
    # a hub name other than the archive username (GitHub logins): the archive's name wins
    spawner = PodSpawner(config=config, user=User("ann-gh", auth_state=state), _mock=True)
    await spawner.run_pre_spawn_hook()
    env = spawner.environment
    assert (env["DANDI_API_URL"], env["DANDI_API_KEY"]) == (ARCHIVE, KEY)
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == name
    assert env.get("GIT_AUTHOR_EMAIL") == env.get("GIT_COMMITTER_EMAIL") == email


def test_auth_state_round_trips_and_keeps_oauthenticator_s_keys():
    typed = DandiAuthState(api_url=ARCHIVE, archive="DANDI", api_key=KEY,
                           user=DandiUser("ann-neuro", "Ann Neuro", "ann@example.org",
                                          "APPROVED", True))
    stored = typed.update({"access_token": "t", "token_response": {}})
    assert stored == {"access_token": "t", "token_response": {}, "dandi_api_key": KEY,
                      "dandi_api_url": ARCHIVE, "dandi_archive": "DANDI",
                      "dandi_user": {"username": "ann-neuro", "name": "Ann Neuro",
                                     "email": "ann@example.org", "status": "APPROVED",
                                     "admin": True}}
    assert DandiAuthState.from_dict(stored) == typed
    # no key (GitHub sign-in): none written, none read
    assert "dandi_api_key" not in DandiAuthState(api_url=ARCHIVE).to_dict()
    assert DandiAuthState.from_dict(None) == DandiAuthState()


@pytest.mark.parametrize("slug", PROFILE_SLUGS)
async def test_every_profile_renders_a_valid_unprivileged_pod(slug):
    spawner, pod = await render(profile=slug)
    validate(pod)
    profile = next(p for p in load_profiles(DEFAULT_PROFILES, Settings().images) if p.slug == slug)
    spec = pod["spec"]
    container = spec["containers"][0]

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(c.get("securityContext", {}).get("privileged") for c in spec.get("initContainers", []))

    resources = container["resources"]
    assert float(resources["requests"]["cpu"]) == profile.cpu_guarantee
    assert float(resources["limits"]["cpu"]) == profile.cpu_limit
    assert int(resources["requests"]["memory"]) == profile.mem_guarantee
    assert int(resources["limits"]["memory"]) == profile.mem_limit
    assert (GPU_RESOURCE in resources["limits"]) == bool(profile.gpus)

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes["dev-shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": str(profile.mem_limit // 2)}
    assert mounts["/dev/shm"]["name"] == "dev-shm"
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == spawner.pvc_name == "claim-ann-neuro"
    assert mounts["/home/jovyan"]["name"] == "home"

    env = env_of(container)
    assert env["DANDI_API_URL"]["value"] == ARCHIVE
    for name in ("DANDI_API_KEY", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {
            "name": "jupyter-ann-neuro-env", "key": name, "optional": False}}}
    assert KEY not in json.dumps(pod) and HUB_TOKEN not in json.dumps(pod)  # in the Secret only
    assert env["GIT_AUTHOR_NAME"]["value"] == "Ann Neuro"
    assert env["GIT_AUTHOR_EMAIL"]["value"] == "ann@example.org"
    assert env["DANDILAB_ACTIVITY_INTERVAL"]["value"] == "120"
    assert container["image"] == profile.images[0].image
    # args, not command: the image's entrypoint (tini) stays PID 1 and reaps processes
    assert container["args"][0] == "jupyterhub-singleuser"


async def test_gpu_profile_asks_for_a_gpu_and_tolerates_gpu_nodes(artifacts):
    settings = Settings(spawner="kubernetes", archive_url=ARCHIVE)
    config = build_config(settings)
    # a toleration the chart sets for all user pods stays next to the profile's
    config.KubeSpawner.tolerations = [
        {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    ]
    spawner = PodSpawner(config=config, user=User(), _mock=True)
    spawner.api_token = HUB_TOKEN
    await spawner.run_pre_spawn_hook()
    spawner.user_options = {"profile": "gpu"}
    await spawner.load_user_options()
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    validate(pod)
    (artifacts / "gpu-pod.yaml").write_text(
        "# The GPU profile's pod as KubeSpawner renders it (tests/test_kubespawner.py)\n"
        + yaml.safe_dump(pod, sort_keys=False)
    )
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"][GPU_RESOURCE] == "1"
    assert container["image"] == "dandihub-user-gpu:latest"
    tolerations = pod["spec"]["tolerations"]
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
            "effect": "NoSchedule"} in tolerations


async def test_the_user_picks_an_image_of_the_profile():
    settings = Settings(
        spawner="kubernetes", archive_url=ARCHIVE,
        images=[{"slug": "standard", "display_name": "Standard", "image": "dandihub-user:1"},
                {"slug": "matlab", "display_name": "MATLAB", "image": "dandihub-matlab:1"}],
        profiles=[{"slug": "base", "display_name": "Base", "cpu_guarantee": 1, "cpu_limit": 2,
                   "mem_guarantee": "1G", "mem_limit": "4G", "shm_size": "1G"}],
    )
    _, pod = await render(settings, profile="base", image="matlab")
    validate(pod)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "dandihub-matlab:1"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["dev-shm"]["emptyDir"]["sizeLimit"] == str(1 << 30)


async def test_a_group_profile_is_offered_and_started_only_for_its_members():
    settings = Settings(spawner="kubernetes", archive_url=ARCHIVE, profiles=[
        *DEFAULT_PROFILES[:1], {**DEFAULT_PROFILES[-1], "groups": ["gpu-users"]}])
    config = build_config(settings)

    def offered(user):
        spawner = PodSpawner(config=config, user=user, _mock=True)
        return spawner, [p["slug"] for p in spawner.profile_list(spawner)]

    assert offered(User(groups=["gpu-users"]))[1] == ["tiny", "gpu"]
    assert offered(User(admin=True))[1] == ["tiny", "gpu"]
    spawner, slugs = offered(User(groups=["students"]))
    assert slugs == ["tiny"]
    assert "gpu" not in await spawner.get_options_form()
    spawner.user_options = {"profile": "gpu"}  # e.g. through the REST API
    with pytest.raises(ValueError):
        await spawner.load_user_options()


async def test_the_key_secret_belongs_to_the_pod_and_is_created_after_it():
    spawner, pod = await render(profile="tiny")
    pod["metadata"]["uid"] = "0b7f2c1e-1111-4222-8333-944445555666"
    calls = []

    class Api:  # stand-in for kubernetes_asyncio's CoreV1Api: the calls KubeSpawner makes
        async def delete_namespaced_secret(self, namespace, name):
            calls.append(("delete", namespace, name))
            raise ApiException(status=404)

        async def read_namespaced_secret(self, namespace, name):
            raise ApiException(status=404)

        async def create_namespaced_secret(self, namespace, body):
            calls.append(("create", namespace, body))

    spawner.api = Api()
    await spawner.after_pod_created_hook(spawner, pod)
    assert [c[0] for c in calls] == ["delete", "create"]
    _, namespace, secret = calls[1]
    assert namespace == spawner.namespace
    async with ApiClient() as api:
        manifest = api.sanitize_for_serialization(secret)
    validate(manifest)
    assert manifest["metadata"]["name"] == "jupyter-ann-neuro-env"
    assert manifest["stringData"] == {
        "DANDI_API_KEY": KEY, "JUPYTERHUB_API_TOKEN": HUB_TOKEN, "JPY_API_TOKEN": HUB_TOKEN}
    owner = manifest["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", pod["metadata"]["name"],
                                                           pod["metadata"]["uid"])


async def test_without_secrets_there_is_no_secret():
    config = build_config(Settings(spawner="kubernetes", archive_url=ARCHIVE))
    spawner = PodSpawner(config=config, user=User(auth_state={}), _mock=True)
    await spawner.run_pre_spawn_hook()
    spawner.user_options = {"profile": "tiny"}
    await spawner.load_user_options()
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    validate(pod)
    assert "DANDI_API_KEY" not in env_of(pod["spec"]["containers"][0])
    spawner.api = None  # any API call would fail
    await spawner.after_pod_created_hook(spawner, pod)


async def test_shared_nfs_home_shared_data_and_dask_gateway():
    settings = Settings(
        spawner="kubernetes", archive_url=ARCHIVE, home_claim="homes-nfs",
        shared_data_claim="dandi-shared",
        dask_gateway_address="http://traefik-dask-gateway/services/dask-gateway",
        dask_gateway_proxy_address="gateway://traefik-dask-gateway:80",
        dask_gateway_public_address="https://hub.example.org/services/dask-gateway/",
    )
    spawner, pod = await render(settings, profile="tiny")
    validate(pod)
    assert not spawner.storage_pvc_ensure
    spec = pod["spec"]
    container = spec["containers"][0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "homes-nfs"}
    assert mounts["/home/jovyan"]["subPath"] == "homes/ann-neuro"
    init = spec["initContainers"][0]
    assert init["command"] == ["mkdir", "-p", "/mnt/home-volume/homes/ann-neuro"]
    assert init["securityContext"]["runAsUser"] == 1000
    assert init["securityContext"]["runAsNonRoot"] is True
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert volumes["shared-data"]["persistentVolumeClaim"] == {"claimName": "dandi-shared",
                                                               "readOnly": True}
    assert mounts["/home/jovyan/shared"]["readOnly"] is True
    env = {k: v.get("value") for k, v in env_of(container).items()}
    assert env["DASK_GATEWAY__ADDRESS"] == "http://traefik-dask-gateway/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-dask-gateway:80"
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"] == "https://hub.example.org/services/dask-gateway/"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"


async def test_the_deployer_s_volumes_stay_and_ours_are_added_once_per_pod():
    """Zero to JupyterHub's volumes and init containers (list or dict form, {username}
    expanded by KubeSpawner) come first, ours after; rendering twice adds nothing twice."""
    config = build_config(Settings(spawner="kubernetes", archive_url=ARCHIVE, home_claim="h"))
    config.KubeSpawner.volumes = {"a": {"name": "extra", "emptyDir": {}}}
    config.KubeSpawner.volume_mounts = [{"name": "extra", "mountPath": "/x/{username}"}]
    config.KubeSpawner.init_containers = [{"name": "first", "image": "busybox:1.37"}]
    spawner = PodSpawner(config=config, user=User(), _mock=True)
    spawner.user_options = {"profile": "tiny"}
    await spawner.load_user_options()
    async with ApiClient() as api:
        pods = [api.sanitize_for_serialization(await spawner.get_pod_manifest())
                for _ in range(2)]
    assert pods[0] == pods[1]
    spec = pods[0]["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["extra", "dev-shm", "home"]
    assert [m["mountPath"] for m in spec["containers"][0]["volumeMounts"]] == [
        "/x/ann-neuro", "/dev/shm", "/home/jovyan"]
    assert [c["name"] for c in spec["initContainers"]] == ["home-folder", "first"]
    assert spawner.volumes == {"a": {"name": "extra", "emptyDir": {}}}
    validate(pods[0])
