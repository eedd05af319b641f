//! The deployment files under `deploy/` against the real binary: every flag and environment
//! variable they use exists in `tidemark serve --help`, ports and paths agree across the
//! Kubernetes manifests, the Containerfile and the systemd units, probe paths are routes that
//! answer without a token, the NATS configs are durable and valid for nats-server, and the
//! stream definition is the one Tidemark provisions. Metrics and commands named in the operator
//! docs exist.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every YAML document of a file.
fn yaml(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: not YAML: {e}"))
}

/// The one document of `kind` (and `name`, when given) among the files of deploy/k8s.
fn k8s(kind: &str, name: Option<&str>) -> Yaml {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo("deploy/k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let relative = format!("deploy/k8s/{}", path.file_name().unwrap().to_str().unwrap());
            for doc in yaml(&relative) {
                if doc["kind"].as_str() == Some(kind)
                    && name.is_none_or(|n| doc["metadata"]["name"].as_str() == Some(n))
                {
                    found.push(doc);
                }
            }
        }
    }
    assert_eq!(found.len(), 1, "expected one {kind} {name:?} in deploy/k8s");
    found.pop().unwrap()
}

fn text(value: &Yaml, what: &str) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => panic!("{what}: expected a string, found {other:?}"),
    }
}

fn list<'a>(value: &'a Yaml, what: &str) -> &'a Vec<Yaml> {
    value
        .as_vec()
        .unwrap_or_else(|| panic!("{what}: expected a list, found {value:?}"))
}

/// What `tidemark serve --help` offers: its `--flags` and the environment variables it reads.
struct ServeHelp {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn serve_help() -> ServeHelp {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let words = |prefix: &str| -> BTreeSet<String> {
        help.match_indices(prefix)
            .map(|(at, _)| {
                help[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let flags = words("--").into_iter().map(|f| format!("--{f}")).collect();
    let env = words("[env: ");
    assert!(
        env.contains("TIDEMARK_TOKENS"),
        "help lists env names: {help}"
    );
    ServeHelp { flags, env }
}

/// The value after `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| args[i + 1].as_str())
}

fn assert_flags_exist(args: &[String], help: &ServeHelp, origin: &str) {
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{origin}");
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.flags.contains(arg),
            "{origin} uses {arg}, which `tidemark serve --help` does not offer"
        );
    }
}

fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

fn statefulset_container() -> (Yaml, Yaml) {
    let set = k8s("StatefulSet", Some("tidemark"));
    let containers = list(&set["spec"]["template"]["spec"]["containers"], "containers");
    assert_eq!(containers.len(), 1);
    (set.clone(), containers[0].clone())
}

#[test]
fn the_statefulset_runs_the_binary_with_flags_ports_env_and_volume_that_exist() {
    let help = serve_help();
    let (set, container) = statefulset_container();
    let pod = &set["spec"]["template"]["spec"];

    // The image: this release, never a moving tag.
    let image = text(&container["image"], "image");
    assert!(
        image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "the image {image} is not tagged with this release ({})",
        env!("CARGO_PKG_VERSION")
    );

    let args: Vec<String> = list(&container["args"], "args")
        .iter()
        .map(|a| text(a, "arg"))
        .collect();
    assert_flags_exist(&args, &help, "deploy/k8s/statefulset.yaml");

    // The listen port is the container port named http, which the Services target.
    let listen = flag_value(&args, "--listen").expect("--listen is set");
    assert!(
        listen.starts_with("0.0.0.0:"),
        "pods must listen beyond loopback"
    );
    let ports = list(&container["ports"], "ports");
    let http = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .expect("a port named http");
    assert_eq!(
        http["containerPort"].as_i64(),
        Some(i64::from(port_of(listen)))
    );
    for name in ["tidemark", "tidemark-headless"] {
        let service = k8s("Service", Some(name));
        let port = &list(&service["spec"]["ports"], "service ports")[0];
        assert_eq!(port["targetPort"].as_str(), Some("http"), "{name}");
        assert_eq!(
            port["port"].as_i64(),
            Some(i64::from(port_of(listen))),
            "{name}"
        );
        assert_eq!(
            service["spec"]["selector"], set["spec"]["template"]["metadata"]["labels"],
            "{name} selects the pods"
        );
    }
    assert_eq!(
        set["spec"]["serviceName"].as_str(),
        Some("tidemark-headless")
    );
    assert_eq!(
        k8s("PodDisruptionBudget", None)["spec"]["selector"]["matchLabels"],
        set["spec"]["template"]["metadata"]["labels"]
    );

    // Distributed: R3 on the cluster that nats-values.yaml describes.
    assert_eq!(flag_value(&args, "--stream-replicas"), Some("3"));
    let values = &yaml("deploy/k8s/nats-values.yaml")[0];
    assert_eq!(values["config"]["cluster"]["replicas"].as_i64(), Some(3));
    assert_eq!(values["config"]["cluster"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        values["config"]["jetstream"]["enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        values["config"]["jetstream"]["fileStore"]["enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        values["config"]["jetstream"]["merge"]["sync_interval"].as_str(),
        Some("always")
    );
    assert_eq!(
        values["config"]["merge"]["authorization"]["user"].as_str(),
        k8s("ConfigMap", Some("tidemark"))["data"]["TIDEMARK_NATS_USER"].as_str()
    );

    // The store file lives on the claim of every replica.
    let db = flag_value(&args, "--db").expect("--db is set");
    let mounts = list(&container["volumeMounts"], "volumeMounts");
    let data = mounts
        .iter()
        .find(|m| Path::new(db).starts_with(text(&m["mountPath"], "mountPath")))
        .unwrap_or_else(|| panic!("no volume mounted where --db {db} lives"));
    let claims = list(&set["spec"]["volumeClaimTemplates"], "volumeClaimTemplates");
    assert!(
        claims
            .iter()
            .any(|c| c["metadata"]["name"].as_str() == data["name"].as_str()),
        "the volume at --db is a volumeClaimTemplate (each replica its own redb file)"
    );

    // Environment: names the binary reads, from the ConfigMap and Secret that exist.
    let config_map = k8s("ConfigMap", Some("tidemark"));
    let secret = k8s("Secret", Some("tidemark"));
    let mut names: Vec<String> = config_map["data"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| text(k, "key"))
        .collect();
    for env in list(&container["env"], "env") {
        names.push(text(&env["name"], "env name"));
        let from = &env["valueFrom"]["secretKeyRef"];
        assert_eq!(from["name"].as_str(), Some("tidemark"));
        let key = text(&from["key"], "secret key");
        assert!(
            !secret["stringData"][key.as_str()].is_badvalue(),
            "the Secret has no key {key}"
        );
    }
    for name in names.iter().filter(|n| n.as_str() != "RUST_LOG") {
        assert!(
            help.env.contains(name),
            "the pod sets {name}, which `tidemark serve` does not read"
        );
    }
    assert!(
        names.iter().any(|n| n == "TIDEMARK_TOKENS"),
        "tokens are set"
    );

    // Non-root, as the image's user.
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(65532));
    assert!(
        !container["resources"]["requests"]["memory"].is_badvalue()
            && !container["resources"]["limits"]["memory"].is_badvalue()
    );
}

#[test]
fn probes_are_real_routes_that_answer_without_a_token_and_never_kill_a_catching_up_replica() {
    let (_, container) = statefulset_container();
    let probe = |name: &str| -> (String, i64) {
        let probe = &container[name];
        assert_eq!(probe["httpGet"]["port"].as_str(), Some("http"), "{name}");
        let budget = probe["periodSeconds"].as_i64().unwrap_or(10)
            * probe["failureThreshold"].as_i64().unwrap_or(3);
        (text(&probe["httpGet"]["path"], name), budget)
    };
    let (startup, startup_budget) = probe("startupProbe");
    let (liveness, _) = probe("livenessProbe");
    let (readiness, _) = probe("readinessProbe");
    // /readyz is 503 while catching up: as a liveness or startup probe it would restart a
    // replica that is doing exactly what it should (seed 004's cold-start loop).
    assert_eq!(liveness, "/healthz");
    assert_eq!(startup, "/healthz");
    assert_eq!(readiness, "/readyz");
    // Opening the store may fold the whole log after an upgrade: give it half an hour.
    assert!(startup_budget >= 1_800, "startup budget {startup_budget} s");

    // The paths answer on the real server, with tokens required everywhere else.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("probe.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    child
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env(
            "TIDEMARK_TOKENS",
            "read:0123456789abcdef01,write:fedcba9876543210fe",
        );
    let (mut server, base) = support::spawn_command(child);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    for path in [&startup, &liveness, &readiness] {
        let mut response = agent.get(format!("{base}{path}")).call().unwrap();
        let body = response.body_mut().read_to_string().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json["status"].is_string(), "{path}: {body}");
    }
    let status = agent
        .get(format!("{base}/v1/findings"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401, "the API itself needs a token");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn the_example_secret_is_refused_until_its_placeholders_are_replaced() {
    let secret = k8s("Secret", Some("tidemark"));
    let tokens = text(&secret["stringData"]["TIDEMARK_TOKENS"], "TIDEMARK_TOKENS");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("x.redb"))
        .env("TIDEMARK_TOKENS", tokens)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("TIDEMARK_TOKENS") && stderr.contains("16 characters"),
        "{stderr}"
    );
}

/// `KEY VALUE...` instructions of the Containerfile.
fn containerfile() -> Vec<(String, String)> {
    read("deploy/container/Containerfile")
        .replace("\\\n", " ")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, rest) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
            (key.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON array: {text}: {e}"))
}

#[test]
fn the_containerfile_builds_the_binary_and_runs_it_as_nonroot_on_the_manifests_port_and_volume() {
    let help = serve_help();
    let lines = containerfile();
    let one = |key: &str| -> String {
        let values: Vec<&String> = lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values.len(), 1, "one {key} in the Containerfile");
        values[0].clone()
    };
    assert_eq!(
        lines.iter().filter(|(k, _)| k == "FROM").count(),
        2,
        "multi-stage"
    );
    let build = one("RUN");
    assert!(
        build.contains("cargo build --release --locked -p tidemark-cli"),
        "{build}"
    );
    assert_eq!(one("USER"), "nonroot");
    let entrypoint = json_array(&one("ENTRYPOINT"));
    let binary = &entrypoint[0];
    assert!(
        lines
            .iter()
            .any(|(k, v)| k == "COPY" && v.ends_with(&format!(" {binary}"))),
        "the ENTRYPOINT {binary} is what the runtime stage copies"
    );
    assert!(build.contains(&format!("/out{binary}")));
    let cmd = json_array(&one("CMD"));
    assert_flags_exist(&cmd, &help, "deploy/container/Containerfile CMD");
    let listen = flag_value(&cmd, "--listen").unwrap();
    let (_, container) = statefulset_container();
    let http = &list(&container["ports"], "ports")[0];
    assert_eq!(one("EXPOSE"), port_of(listen).to_string());
    assert_eq!(
        http["containerPort"].as_i64(),
        Some(i64::from(port_of(listen)))
    );
    let volume = json_array(&one("VOLUME"));
    let db = flag_value(&cmd, "--db").unwrap();
    assert!(
        Path::new(db).starts_with(&volume[0]),
        "--db {db} is on the VOLUME"
    );
    let k8s_args: Vec<String> = list(&container["args"], "args")
        .iter()
        .map(|a| text(a, "arg"))
        .collect();
    assert_eq!(
        flag_value(&k8s_args, "--db"),
        Some(db),
        "same data path as the manifests"
    );
    assert!(
        lines.iter().any(|(k, v)| k == "COPY"
            && v.contains("--chown=65532:65532")
            && v.ends_with(&volume[0])),
        "the data directory belongs to nonroot (uid 65532)"
    );
}

/// `Key=Value` lines of a systemd unit (all values of a repeated key).
fn unit(path: &str) -> Vec<(String, String)> {
    read(path)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.starts_with('#') && !k.contains(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn unit_value(unit: &[(String, String)], key: &str) -> String {
    unit.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

#[test]
fn the_systemd_units_use_real_flags_and_are_hardened_and_sized_for_a_slow_start() {
    let help = serve_help();
    let tidemark = unit("deploy/systemd/tidemark.service");
    let exec = unit_value(&tidemark, "ExecStart");
    let args: Vec<String> = exec.split_whitespace().skip(1).map(str::to_owned).collect();
    assert_flags_exist(&args, &help, "deploy/systemd/tidemark.service");
    let state = unit_value(&tidemark, "StateDirectory");
    let db = flag_value(&args, "--db").unwrap();
    assert!(
        db.starts_with(&format!("%S/{state}/")),
        "--db {db} in StateDirectory"
    );
    let listen = flag_value(&args, "--listen").unwrap();
    assert!(
        unit_value(&tidemark, "ExecStartPost")
            .contains(&format!("127.0.0.1:{}/healthz", port_of(listen))),
        "ExecStartPost waits for the real listener"
    );
    for unit in [&tidemark, &unit("deploy/systemd/nats-server.service")] {
        assert_eq!(unit_value(unit, "Restart"), "on-failure");
        assert_eq!(unit_value(unit, "ProtectSystem"), "strict");
        assert_eq!(unit_value(unit, "NoNewPrivileges"), "yes");
        assert_eq!(unit_value(unit, "DynamicUser"), "yes");
    }
    assert_eq!(unit_value(&tidemark, "TimeoutStartSec"), "30min");
    assert!(unit_value(&tidemark, "After").contains("nats-server.service"));
    assert!(unit_value(&tidemark, "Wants").contains("nats-server.service"));
    for (name, _) in unit("deploy/systemd/tidemark.env.example") {
        assert!(
            name == "RUST_LOG" || help.env.contains(&name),
            "tidemark.env.example sets {name}, which `tidemark serve` does not read"
        );
    }
}

/// The nats-server of the tests: `$TIDEMARK_NATS_SERVER`, else installed by the project script.
fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDEMARK_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let out = Command::new(repo("scripts/install-nats-server"))
        .output()
        .expect("scripts/install-nats-server runs");
    assert!(out.status.success(), "scripts/install-nats-server failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn the_nats_configs_are_durable_valid_and_form_one_cluster() {
    let server = nats_server();
    let store = tempfile::tempdir().unwrap();
    let configs = [
        "deploy/nats/single-node.conf",
        "deploy/nats/cluster/n1.conf",
        "deploy/nats/cluster/n2.conf",
        "deploy/nats/cluster/n3.conf",
    ];
    for config in configs {
        let text = read(config);
        assert!(
            text.lines().any(|l| l.trim() == "sync_interval: always"),
            "{config} fsyncs before acknowledging"
        );
        let out = Command::new(&server)
            .arg("-t")
            .arg("-c")
            .arg(repo(config))
            .env("NATS_STORE_DIR", store.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nats-server -t rejects {config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The routes of every node are the three nodes' cluster ports; names and ports differ.
    let value = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
            .map(str::to_owned)
            .collect()
    };
    let mut names = BTreeSet::new();
    let mut client_ports = BTreeSet::new();
    let mut route_ports = BTreeSet::new();
    let nodes = &configs[1..];
    for config in nodes {
        let text = read(config);
        names.insert(value(&text, "server_name")[0].clone());
        client_ports.insert(value(&text, "listen")[0].clone());
        route_ports.insert(value(&text, "listen")[1].clone());
        assert_eq!(
            value(&text, "name"),
            ["tidemark"],
            "{config}: one cluster name"
        );
    }
    assert_eq!(
        (names.len(), client_ports.len(), route_ports.len()),
        (3, 3, 3)
    );
    for config in nodes {
        let routes: BTreeSet<String> = read(config)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nats-route://"))
            .map(str::to_owned)
            .collect();
        assert_eq!(routes, route_ports, "{config}: routes to every node");
    }
}

#[test]
fn the_stream_definition_is_the_one_tidemark_provisions() {
    let file: serde_json::Value = serde_json::from_str(&read("deploy/nats/stream.json")).unwrap();
    let settings = tidemark_nats::StreamSettings {
        replicas: 3,
        ..tidemark_nats::StreamSettings::default()
    };
    let code = serde_json::to_value(tidemark_nats::connect::stream_config(&settings)).unwrap();
    let file = file.as_object().unwrap();
    for key in [
        "name",
        "subjects",
        "retention",
        "storage",
        "num_replicas",
        "duplicate_window",
        "discard",
    ] {
        assert!(
            file.contains_key(key),
            "deploy/nats/stream.json lacks {key}"
        );
    }
    for (key, value) in file {
        assert_eq!(
            &code[key], value,
            "deploy/nats/stream.json {key}: Tidemark provisions {} (whole config: {code})",
            code[key]
        );
    }
}

#[test]
fn metrics_and_commands_named_in_the_operator_docs_exist() {
    let mut docs = vec![
        read("docs/operator-guide.md"),
        read("docs/limits.md"),
        read("deploy/nats/README.md"),
    ];
    for entry in std::fs::read_dir(repo("docs/runbooks")).unwrap() {
        let path = entry.unwrap().path();
        docs.push(std::fs::read_to_string(path).unwrap());
    }
    let sources: String = [
        "crates/tidemark-server/src/routes/health.rs",
        "crates/tidemark-server/src/metrics.rs",
        "crates/tidemark-server/src/stream.rs",
        "crates/tidemark-cli/src/distributed.rs",
    ]
    .iter()
    .map(|p| read(p))
    .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: BTreeSet<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        commands.contains("serve") && commands.contains("emit"),
        "{help}"
    );
    let mut checked = 0;
    for doc in &docs {
        for (at, _) in doc.match_indices("tidemark_") {
            let name: String = doc[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            // The browser's token cookie and crate names (log filters) are not metrics.
            let crates = ["nats", "server", "store", "core", "cli", "export"];
            if name == "tidemark_token" || crates.iter().any(|c| name == format!("tidemark_{c}")) {
                continue;
            }
            assert!(
                sources.contains(&format!("\"{base}"))
                    || sources.contains(&format!("# TYPE {base} ")),
                "docs name a metric {name} that Tidemark does not export"
            );
            checked += 1;
        }
        for (at, _) in doc.match_indices("tidemark ") {
            let before = doc[..at].chars().last();
            if !matches!(before, Some('`' | ' ' | '\n' | '$' | '(')) {
                continue;
            }
            let word: String = doc[at + 9..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            // `tidemark serve`, not prose like "tidemark is".
            if word.is_empty() || !doc[at + 9 + word.len()..].starts_with([' ', '`', '\n']) {
                continue;
            }
            let followed_by_flag_or_code =
                doc[at + 9 + word.len()..].trim_start().starts_with("--")
                    || before == Some('`')
                    || before == Some('$');
            if followed_by_flag_or_code {
                assert!(
                    commands.contains(word.as_str()),
                    "docs run `tidemark {word}`, which is not a command"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "the docs name metrics and commands ({checked} checked)"
    );
}
