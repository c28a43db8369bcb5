"""The pure parts of the runtimes: limits, the bwrap command line, the container config, the Job manifest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.models import MAX_PROMPT_CHARS
from orchestrator.runtimes.base import DefaultLimits, Limits, RunSpec
from orchestrator.runtimes.docker import WRAPPER, container_config
from orchestrator.runtimes.factory import (
    container_user,
    default_limits,
    hidden_from_agents,
    isolation,
    make_runtime,
)
from orchestrator.runtimes.k8s_manifest import (
    FEED_PROMPT,
    JobSettings,
    ManifestError,
    is_secret_name,
    job_manifest,
    job_name,
    label_value,
    prompt_config_map,
)
from orchestrator.runtimes.ownership import AgentUser, agent_user, handover_problem, parse_user
from orchestrator.runtimes.sandbox import (
    Bwrap,
    Visibility,
    add_dirs,
    bwrap_argv,
    mounts,
    program_roots,
    writable_paths,
)
from orchestrator.settings import Settings

DATA = Path("/srv/orch")
SECRET = "sk-ant-very-secret-value"


def _spec(**limits: float) -> RunSpec:
    run_dir = DATA / "runs" / "coding-0123abcd"
    return RunSpec(
        agent_id="coding-0123abcd",
        argv=["/opt/claude", "-p", "--add-dir", "/srv/orch/workspaces/tasks/t1/other", "--verbose"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(run_dir / "home"),
            "CLAUDE_CONFIG_DIR": str(run_dir / "claude-config"),
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9999",
            "ANTHROPIC_API_KEY": SECRET,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "ORCHESTRATOR_AGENT_ID": "coding-0123abcd",
        },
        cwd=DATA / "workspaces" / "coding-0123abcd",
        run_dir=run_dir,
        limits=Limits(wall_seconds=90.5, **limits),  # type: ignore[arg-type]
        labels={"agent_id": "coding-0123abcd", "instance_id": "host-1-12345-abcdef"},
        prompt="--do it",
    )


def test_default_limits_fill_only_what_the_spec_leaves_open() -> None:
    defaults = DefaultLimits(memory_bytes=1 << 30, cpus=2.0, pids=256)
    assert defaults.apply(Limits(10)) == Limits(10, 1 << 30, 2.0, 256)
    assert defaults.apply(Limits(10, memory_bytes=5, pids=7)) == Limits(10, 5, 2.0, 7)
    settings = Settings(AGENT_MEMORY_MB=512, AGENT_CPUS=1.5, AGENT_PIDS=100)  # type: ignore[call-arg]
    assert default_limits(settings) == DefaultLimits(512 * 1024 * 1024, 1.5, 100)
    assert default_limits(Settings()) == DefaultLimits()


def test_writable_paths_are_the_workspace_extra_dirs_home_and_config() -> None:
    spec = _spec()
    assert add_dirs(spec.argv) == ["/srv/orch/workspaces/tasks/t1/other"]
    assert writable_paths(spec) == [
        spec.cwd,
        Path("/srv/orch/workspaces/tasks/t1/other"),
        spec.run_dir / "home",
        spec.run_dir / "claude-config",
    ]


def test_bwrap_command_line() -> None:
    spec = _spec()
    argv = bwrap_argv("/usr/bin/bwrap", spec)
    joined = " ".join(argv)
    assert argv[0] == "/usr/bin/bwrap"
    assert "--unshare-pid" in argv and "--die-with-parent" in argv
    assert "--unshare-net" not in argv and "--unshare-all" not in argv  # the model API must stay reachable
    assert "--ro-bind / /" in joined and "--tmpfs /tmp" in joined
    assert "--dev /dev" in joined and "--proc /proc" in joined
    for path in writable_paths(spec):
        assert f"--bind {path} {path}" in joined
    assert f"--bind {spec.run_dir} " not in joined  # the run dir itself (exit code, output) stays read-only
    # the writable binds come after the read-only root and the private /tmp, so they win
    assert joined.index("--ro-bind / /") < joined.index("--tmpfs /tmp") < joined.index(f"--bind {spec.cwd}")
    assert argv[argv.index("--chdir") + 1] == str(spec.cwd)
    assert argv[argv.index("--") + 1 :] == spec.argv
    assert "--unshare-user-try" in bwrap_argv("/usr/bin/bwrap", spec, as_root=False)


def test_bwrap_masks_the_services_paths_and_binds_back_only_this_agents() -> None:
    spec = _spec()
    cli = Path("/root/.local/share/orchestrator/claude-code/2.1.328")
    visibility = Visibility(
        hidden_dirs=(DATA, Path("/root"), DATA / "events", Path("/")),
        hidden_files=(Path("/var/lib/orch.db"), DATA / "orchestrator.db"),
        readable=(cli,),
    )
    argv = bwrap_argv("/usr/bin/bwrap", spec, visibility=visibility)
    pairs = [(argv[i], argv[i + 1]) for i in range(len(argv) - 1)]
    position = {pair: i for i, pair in enumerate(pairs)}
    assert ("--tmpfs", "/") not in position  # never the whole root
    assert ("--tmpfs", str(DATA / "events")) not in position  # inside the masked data dir already
    assert ("--ro-bind", "/dev/null") in position and argv.count("/var/lib/orch.db") == 1
    assert str(DATA / "orchestrator.db") not in argv
    # shallow first: the masks come before what is bound back inside them, and the root before all
    assert position[("--ro-bind", "/")] < position[("--tmpfs", "/root")] < position[("--ro-bind", str(cli))]
    assert position[("--tmpfs", str(DATA))] < position[("--bind", str(spec.cwd))]
    assert position[("--tmpfs", str(DATA))] < position[("--bind", str(spec.run_dir / "home"))]
    assert ("--bind", str(spec.run_dir)) not in position and ("--bind", str(DATA / "runs")) not in position
    # a masked directory inside a bound-back one is masked again after the bind
    inner = spec.cwd / "secrets"
    argv = bwrap_argv("/usr/bin/bwrap", spec, visibility=Visibility(hidden_dirs=(DATA, inner)))
    assert argv.index(str(spec.cwd)) < argv.index(str(inner))


def test_the_pinned_cli_is_bound_back_with_its_whole_install() -> None:
    pinned = "/root/.local/share/orchestrator/claude-code/2.1.328/node_modules/.bin/claude"
    assert program_roots(pinned) == [Path("/root/.local/share/orchestrator/claude-code/2.1.328/node_modules")]
    assert program_roots("/tmp/x/cli.sh") == [Path("/tmp/x/cli.sh")]


def test_only_an_explicit_none_or_a_failing_auto_runs_agents_unsandboxed() -> None:
    missing = "/nonexistent/bwrap"
    auto = make_runtime(Settings(BWRAP_BIN=missing), "i")  # type: ignore[call-arg]
    assert Settings().agent_sandbox == "auto"
    assert isolation(auto).sandbox == "none" and auto.check() is None
    assert f"no bubblewrap at {missing}" in (isolation(auto).warning or "")
    none = make_runtime(Settings(AGENT_SANDBOX="none"), "i")  # type: ignore[call-arg]
    assert "AGENT_SANDBOX=none" in (isolation(none).warning or "")
    strict = make_runtime(Settings(AGENT_SANDBOX="bwrap", BWRAP_BIN=missing), "i")  # type: ignore[call-arg]
    assert isolation(strict).sandbox == "bwrap" and isolation(strict).warning is None
    assert f"no bubblewrap at {missing}" in (strict.check() or "")
    hidden = hidden_from_agents(Settings(ORCHESTRATOR_DATA_DIR="/srv/o", DATABASE_PATH="/var/db/o.db"))  # type: ignore[call-arg]
    assert {Path("/srv/o"), Path.home()} <= set(hidden.hidden_dirs)
    assert {Path("/var/db/o.db"), Path("/var/db/o.db-wal"), Path("/run/docker.sock")} <= set(
        hidden.hidden_files
    )


def test_container_config() -> None:
    spec = _spec()
    config = container_config(
        spec,
        Limits(60, memory_bytes=256 << 20, cpus=0.5, pids=64),
        image="orchestrator-agent:x",
        network_mode="host",
        user=AgentUser(1000, 1000),
        claude_bin="claude",
    )
    assert config["image"] == "orchestrator-agent:x"
    assert config["entrypoint"] == ["/bin/sh", "-c", WRAPPER, "agent"]
    assert config["command"] == [str(spec.run_dir), "claude", *spec.argv[1:]]
    assert config["working_dir"] == str(spec.cwd)
    assert config["labels"] == {
        "orchestrator.agent_id": "coding-0123abcd",
        "orchestrator.instance_id": "host-1-12345-abcdef",
    }
    assert config["network_mode"] == "host"
    assert (config["mem_limit"], config["memswap_limit"]) == (256 << 20, 256 << 20)
    assert config["nano_cpus"] == 500_000_000 and config["pids_limit"] == 64
    # not root, no capability, no way to gain privileges, nothing writable but what the agent must write
    assert config["user"] == "1000:1000"
    assert config["cap_drop"] == ["ALL"] and config["security_opt"] == ["no-new-privileges"]
    assert config["read_only"] is True
    assert config["tmpfs"] == {"/tmp": f"rw,nosuid,nodev,exec,mode=1777,size={256 << 20}"}
    modes = {k: (v["bind"], v["mode"]) for k, v in config["volumes"].items()}
    run = spec.run_dir
    assert str(run) not in modes, "the run directory itself is not mounted: the agent cannot add links to it"
    assert modes == {
        str(run / "prompt"): (str(run / "prompt"), "ro"),
        str(run / "stdout"): (str(run / "stdout"), "rw"),
        str(run / "stderr"): (str(run / "stderr"), "rw"),
        str(run / "exit_code"): (str(run / "exit_code"), "rw"),
        str(spec.cwd): (str(spec.cwd), "rw"),
        "/srv/orch/workspaces/tasks/t1/other": ("/srv/orch/workspaces/tasks/t1/other", "rw"),
        str(run / "home"): (str(run / "home"), "rw"),
        str(run / "claude-config"): (str(run / "claude-config"), "rw"),
    }
    assert "PATH" not in config["environment"] and config["environment"]["IS_SANDBOX"] == "1"

    mounted = container_config(
        spec,
        Limits(60),
        image="i",
        network_mode="none",
        user=AgentUser(1000, 1000),
        claude_bin="claude",
        mount_claude="/real/claude.exe",
    )
    assert mounted["tmpfs"] == {"/tmp": "rw,nosuid,nodev,exec,mode=1777"}
    assert mounted["command"][1] == "/opt/claude"
    assert mounted["volumes"]["/real/claude.exe"] == {"bind": "/opt/claude", "mode": "ro"}
    assert "mem_limit" not in mounted and "pids_limit" not in mounted


def _job_settings(**kw: object) -> JobSettings:
    base: dict[str, object] = {
        "namespace": "agents",
        "image": "registry.example/orchestrator-agent:2.1.328",
        "secret_name": "orchestrator-agent-env",
        "pvc_name": "orchestrator-data",
        "pvc_mount": DATA,
        "ttl_seconds": 600,
        "claude_bin": "claude",
    }
    return JobSettings(**{**base, **kw})  # type: ignore[arg-type]


def test_job_manifest() -> None:
    spec = _spec()
    job = job_manifest(spec, Limits(90.5, memory_bytes=1 << 30, cpus=1.5, pids=99), _job_settings())
    assert job["metadata"]["name"] == job_name(spec.agent_id) == "agent-coding-0123abcd"
    assert job["metadata"]["namespace"] == "agents"
    labels = job["metadata"]["labels"]
    assert labels["orchestrator.agent_id"] == "coding-0123abcd"
    assert labels["orchestrator.instance_id"] == "host-1-12345-abcdef"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["spec"]["activeDeadlineSeconds"] == 91 + 60
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    prompt_file = str(spec.run_dir / "input" / "prompt")
    assert container["command"] == [*FEED_PROMPT, prompt_file, "claude", *spec.argv[1:]]
    assert "--do it" not in json.dumps(job), "the prompt is not in the pod spec"
    assert container["workingDir"] == str(spec.cwd)
    assert container["envFrom"] == [{"secretRef": {"name": "orchestrator-agent-env"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "ANTHROPIC_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env and "PATH" not in env
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9999" and env["IS_SANDBOX"] == "1"
    assert SECRET not in json.dumps(job)
    assert container["resources"] == {
        "requests": {"memory": str(1 << 30), "cpu": "1500m"},
        "limits": {"memory": str(1 << 30), "cpu": "1500m"},
    }
    assert pod["volumes"] == [
        {"name": "work", "persistentVolumeClaim": {"claimName": "orchestrator-data"}},
        {
            "name": "prompt",
            "configMap": {
                "name": "agent-coding-0123abcd-prompt",
                "items": [{"key": "prompt", "path": "prompt"}],
                "defaultMode": 0o444,
            },
        },
        {"name": "tmp", "emptyDir": {}},
    ]
    assert pod["securityContext"]["runAsUser"] == 1000 and "fsGroup" not in pod["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "prompt", "mountPath": str(spec.run_dir / "input"), "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    mounts = {m["mountPath"]: m["subPath"] for m in container["volumeMounts"] if "subPath" in m}
    assert mounts == {
        str(spec.cwd): "workspaces/coding-0123abcd",
        "/srv/orch/workspaces/tasks/t1/other": "workspaces/tasks/t1/other",
        str(spec.run_dir / "home"): "runs/coding-0123abcd/home",
        str(spec.run_dir / "claude-config"): "runs/coding-0123abcd/claude-config",
    }


def test_job_manifest_without_pvc_uses_an_empty_dir_and_refuses_paths_off_the_pvc() -> None:
    job = job_manifest(_spec(), Limits(10), _job_settings(pvc_name=None, secret_name=None))
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0] == {"name": "work", "emptyDir": {}}
    assert pod["securityContext"]["fsGroup"] == 1000, "the emptyDir is writable by the agent's group"
    assert "envFrom" not in pod["containers"][0] and "resources" not in pod["containers"][0]
    with pytest.raises(ManifestError, match="not under /elsewhere"):
        job_manifest(_spec(), Limits(10), _job_settings(pvc_mount=Path("/elsewhere")))


def test_job_manifest_is_a_valid_v1_job() -> None:
    from kubernetes import client

    job = job_manifest(_spec(), Limits(10, memory_bytes=1 << 28, cpus=0.25), _job_settings())
    model = client.V1Job.model_validate(job)
    assert model is not None and model.spec is not None
    assert model.spec.template.spec is not None
    assert model.spec.template.spec.containers[0].env_from[0].secret_ref.name == "orchestrator-agent-env"
    assert model.spec.template.spec.security_context.run_as_non_root is True
    assert model.spec.template.spec.containers[0].security_context.capabilities.drop == ["ALL"]


def test_prompt_config_map_is_owned_by_the_job_and_any_prompt_fits_it() -> None:
    from kubernetes import client

    spec = _spec()
    config_map = prompt_config_map(spec, _job_settings(user=AgentUser(2000, 3000)), "uid-of-the-job")
    model = client.V1ConfigMap.model_validate(config_map)
    assert model.data == {"prompt": "--do it"} and model.immutable is True
    assert config_map["metadata"]["name"] == "agent-coding-0123abcd-prompt"
    assert config_map["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "agent-coding-0123abcd", "uid": "uid-of-the-job"}
    ]
    # the API's longest prompt, all four-byte characters, stays under a ConfigMap's 1 MiB
    assert MAX_PROMPT_CHARS * 4 + len("prompt") < 1024 * 1024
    job = job_manifest(spec, Limits(10), _job_settings(user=AgentUser(2000, 3000)))
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 2000
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsGroup"] == 3000


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("coding-0123abcd", "coding-0123abcd"),
        ("host/with spaces:1", "host-with-spaces-1"),
        ("-x-" * 40, None),
    ],
)
def test_label_values_are_valid(raw: str, clean: str | None) -> None:
    value = label_value(raw)
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
    assert clean is None or value == clean


def test_secret_looking_names() -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"):
        assert is_secret_name(name)
    for name in ("ANTHROPIC_BASE_URL", "CLAUDE_CODE_MAX_RETRIES", "HOME", "GIT_AUTHOR_NAME"):
        assert not is_secret_name(name)


def test_only_variables_known_to_hold_no_secret_are_written_into_the_job() -> None:
    spec = _spec()
    env = spec.env | {
        "ANTHROPIC_CUSTOM_HEADERS": "x-api-key: sk-from-headers",
        "ANTHROPIC_MODEL": "claude-sonnet-4-5",
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "8000",  # looks secret by its name: the Secret must give it
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat-secret",
        "AWS_REGION": "eu-west-1",
        "AWS_PROFILE": "prod",
        "GOOGLE_CLOUD_PROJECT": "p",
        "TMPDIR": "/tmp/service-side",
        "SOMETHING_ELSE": "unknown",
        "LANG": "C.UTF-8",
    }
    job = job_manifest(RunSpec(**{**spec.__dict__, "env": env}), Limits(10), _job_settings())
    inlined = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert inlined == {
        "HOME": str(spec.run_dir / "home"),
        "CLAUDE_CONFIG_DIR": str(spec.run_dir / "claude-config"),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9999",
        "ORCHESTRATOR_AGENT_ID": "coding-0123abcd",
        "ANTHROPIC_MODEL": "claude-sonnet-4-5",
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "AWS_REGION": "eu-west-1",
        "LANG": "C.UTF-8",
        "IS_SANDBOX": "1",
    }
    for url in ("https://user:pass@proxy.example", "https://proxy.example/?key=abc", "https://u@p.example"):
        withheld = job_manifest(
            RunSpec(**{**spec.__dict__, "env": {"ANTHROPIC_BASE_URL": url}}), Limits(10), _job_settings()
        )
        assert url not in json.dumps(withheld), "a URL with credentials only comes from the Secret"


def test_factory_builds_the_runtime_the_settings_ask_for() -> None:
    assert make_runtime(Settings(), "i").name == "host"
    sandboxed = make_runtime(Settings(AGENT_SANDBOX="bwrap", BWRAP_BIN="/nonexistent/bwrap"), "i")  # type: ignore[call-arg]
    assert sandboxed.name == "host"
    assert "no bubblewrap at /nonexistent/bwrap" in (sandboxed.check() or "")
    docker = make_runtime(Settings(AGENT_RUNTIME="docker", DOCKER_HOST="unix:///nonexistent.sock"), "i")  # type: ignore[call-arg]
    assert docker.name == "docker"
    assert "no socket at unix:///nonexistent.sock" in (docker.check() or "")
    kube = make_runtime(Settings(AGENT_RUNTIME="kubernetes", KUBERNETES_API_URL="http://127.0.0.1:9"), "i")  # type: ignore[call-arg]
    assert kube.name == "kubernetes"
    assert "Kubernetes API at http://127.0.0.1:9" in (kube.check() or "")


def test_agent_user_is_never_root() -> None:
    assert agent_user(None, 0, 0) == AgentUser(1000, 1000), "a root service hands agents to 1000:1000"
    assert agent_user(None, 501, 20) == AgentUser(501, 20), "else agents run as the service's own user"
    assert agent_user("2000:3000", 0, 0) == AgentUser(2000, 3000)
    assert parse_user("1234") == AgentUser(1234, 1234)
    for bad in ("0", "0:0", "1000:0", "root", "agent:1000", "-1", "1000:"):
        with pytest.raises(ValueError, match=r"root|numeric"):
            parse_user(bad)
    with pytest.raises(ValueError, match="AGENT_CONTAINER_USER"):
        Settings(AGENT_CONTAINER_USER="0:0")  # type: ignore[call-arg]
    assert container_user(Settings(AGENT_CONTAINER_USER=" 4242 ")) == AgentUser(4242, 4242)  # type: ignore[call-arg]
    assert handover_problem(AgentUser(1000, 1000), 0, 0) is None, "root hands paths to anyone"
    assert handover_problem(AgentUser(501, 20), 501, 20) is None, "nothing to hand: they are its own"
    assert "run the service as root" in (handover_problem(AgentUser(1000, 1000), 501, 20) or "")


def test_agent_environment_is_an_allow_list() -> None:
    from orchestrator.agents.command import build_env

    parent = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": "sk-ant-x",
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_REGION": "eu-west-1",
        "GOOGLE_APPLICATION_CREDENTIALS": "/srv/sa.json",
        "CLOUD_ML_REGION": "us-east5",
        "GITHUB_TOKEN": "ghp_x",
        "ORCHESTRATOR_API_TOKEN": "t",
        "ORCHESTRATOR_WEBHOOK_SECRET": "w",
        "SOME_SERVICE_PASSWORD": "p",
    }
    common = {"agent_id": "coding-1", "home": Path("/h"), "config_dir": Path("/c"), "running_as_root": False}
    env = build_env(parent, **common)  # type: ignore[arg-type]
    assert {"PATH", "LANG", "ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_BEDROCK"} <= env.keys()
    for name in (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUD_ML_REGION",
        "GITHUB_TOKEN",
        "ORCHESTRATOR_API_TOKEN",
        "ORCHESTRATOR_WEBHOOK_SECRET",
        "SOME_SERVICE_PASSWORD",
    ):
        assert name not in env, name
    listed = build_env(parent, passthrough=("AWS_REGION", "GITHUB_TOKEN"), **common)  # type: ignore[arg-type]
    assert listed["AWS_REGION"] == "eu-west-1"
    assert "GITHUB_TOKEN" not in listed and "AWS_SECRET_ACCESS_KEY" not in listed


def test_agent_env_passthrough_refuses_the_services_secrets() -> None:
    assert Settings(AGENT_ENV_PASSTHROUGH="AWS_REGION, AWS_PROFILE").agent_env_passthrough == (  # type: ignore[call-arg]
        "AWS_REGION",
        "AWS_PROFILE",
    )
    for bad in ("GITHUB_TOKEN", "AWS_REGION,GH_TOKEN", "DATABASE_URL", "ORCHESTRATOR_API_TOKEN", "A-B"):
        with pytest.raises(ValidationError, match=r"never passed|not an environment"):
            Settings(AGENT_ENV_PASSTHROUGH=bad)  # type: ignore[call-arg]


def test_a_cli_found_on_path_under_a_mask_comes_back_and_nothing_else_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data, local_bin, shims = (
        home / ".local" / "share" / "orchestrator",
        home / ".local" / "bin",
        home / ".pyenv" / "shims",
    )
    for directory in (data, local_bin, shims):
        directory.mkdir(parents=True)
    (local_bin / "claude").write_text("#!/bin/sh\n")
    (local_bin / "claude").chmod(0o755)
    path = f"{shims}:{local_bin}:/usr/bin"
    spec = dataclasses.replace(_spec(), argv=["claude", "-p"], env={"PATH": path})
    seen = Bwrap("/usr/bin/bwrap", Visibility(hidden_dirs=(home, data, tmp_path / "absent"))).visibility(spec)
    assert seen.hidden_dirs == (home, data)
    assert seen.readable == (local_bin / "claude",)  # not the pyenv shims: /usr/bin's python3 stays in reach


def test_masks_land_where_their_paths_lead_now(tmp_path: Path) -> None:
    """A mask given by a link masks its target (a tmpfs on the link would mask nothing); a file mask that
    is a directory, or a path that leads nowhere or through a loop, is left out (bwrap cannot mount there)."""
    real_data, db = tmp_path / "disk" / "data", tmp_path / "disk" / "o.db"
    real_data.mkdir(parents=True)
    db.write_text("")
    (tmp_path / "data").symlink_to(real_data)
    (tmp_path / "db-link").symlink_to(db)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    hidden = Visibility(
        hidden_dirs=(tmp_path / "data", real_data, db, tmp_path / "absent", tmp_path / "loop"),
        hidden_files=(tmp_path / "db-link", real_data, tmp_path / "absent.sock", tmp_path / "loop"),
    )
    seen = Bwrap("/usr/bin/bwrap", hidden).visibility(_spec())
    assert seen.hidden_dirs == (real_data,)
    assert seen.hidden_files == (db,)


def test_a_mask_the_kernel_will_not_follow_is_still_masked(tmp_path: Path) -> None:
    """A chain of 41 links is more than the kernel follows in one lookup (ELOOP): the mask lands on its
    target all the same, as `realpath` finds it, and is never dropped."""
    secret = tmp_path / "secret"
    secret.mkdir()
    link = secret
    for i in range(41):
        (tmp_path / f"link-{i}").symlink_to(link)
        link = tmp_path / f"link-{i}"
    seen = Bwrap("/usr/bin/bwrap", Visibility(hidden_dirs=(link,))).visibility(_spec())
    assert seen.hidden_dirs == (secret,)


def test_a_cli_under_a_hidden_home_brings_back_its_node_modules_only() -> None:
    home = Path("/home/op")
    roots = program_roots(str(home / "node_modules" / ".bin" / "claude"))
    assert home not in roots and home / "node_modules" in roots
    data = home / ".local" / "share" / "orchestrator"
    argv = mounts(Visibility(hidden_dirs=(home, data), readable=(home,)), [])
    assert ["--tmpfs", str(data)] == argv[argv.index(str(data)) - 1 : argv.index(str(data)) + 1], argv


def test_a_hooks_run_is_the_agents_sandbox_with_a_shell_its_own_marker_and_run_directory() -> None:
    from orchestrator.agents.hooks import hook_spec
    from orchestrator.domain.workflow_file import HookName

    agent = _spec()
    hook = hook_spec(agent, HookName.BEFORE_RUN, "npm ci", 30)
    assert hook.argv == ["/bin/sh", "-c", "exec 2>&1\nnpm ci"] and not hook.program_is_cli
    assert (hook.agent_id, hook.env["ORCHESTRATOR_AGENT_ID"]) == ("coding-0123abcd.before_run",) * 2
    assert {k: v for k, v in hook.env.items() if k != "ORCHESTRATOR_AGENT_ID"} == {
        k: v for k, v in agent.env.items() if k != "ORCHESTRATOR_AGENT_ID"
    }
    assert hook.run_dir == agent.run_dir / "hooks" / "before_run" and hook.prompt == ""
    assert (hook.cwd, hook.limits.wall_seconds) == (agent.cwd, 30)
    # the same writable directories as the agent (its --add-dir ones too) and so the same mounts
    assert writable_paths(hook) == writable_paths(agent)
    visibility = Visibility(hidden_dirs=(DATA,), readable=(Path("/opt/claude"),))  # the CLI's install
    agent_mounts = bwrap_argv("/usr/bin/bwrap", agent, visibility=visibility)
    hook_mounts = bwrap_argv("/usr/bin/bwrap", hook, visibility=visibility)
    assert hook_mounts[: hook_mounts.index("--")] == agent_mounts[: agent_mounts.index("--")]
    assert hook_mounts[hook_mounts.index("--") + 1 :] == hook.argv
    # Docker: the image's shell runs it, not the CLI swapped in at argv[0]; the same mounts
    config = container_config(
        hook, Limits(30), image="i", network_mode="none", user=AgentUser(1000, 1000), claude_bin="claude"
    )
    assert config["command"] == [str(hook.run_dir), *hook.argv]
    assert config["labels"]["orchestrator.agent_id"] == "coding-0123abcd.before_run"
    agent_config = container_config(
        agent, Limits(30), image="i", network_mode="none", user=AgentUser(1000, 1000), claude_bin="claude"
    )
    shared = {p for p in agent_config["volumes"] if not p.startswith(str(agent.run_dir) + "/")}
    assert shared <= set(config["volumes"])
    assert str(DATA / "workspaces" / "tasks" / "t1" / "other") in config["volumes"]
