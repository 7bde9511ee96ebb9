//! Worker scripts and the `kanban.profiles` that run them: real shell
//! processes calling this same binary, leaving traces under the root.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Sandbox;

/// Mode of a worker script.
const EXECUTABLE: u32 = 0o755;

impl Sandbox {
    /// `<root>/out/<name>`, where worker scripts leave their traces.
    pub fn out(&self, name: &str) -> PathBuf {
        self.root().join("out").join(name)
    }

    /// An executable `sh` script `<root>/bin/<name>` (on the sandbox's
    /// `PATH`). `body` runs with `$K` and `$KANBAN` (the binary) and `$OUT`
    /// (`<root>/out`) set.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        for dir in ["bin", "out"] {
            std::fs::create_dir_all(self.path(dir)).unwrap();
        }
        let p = self.path(&format!("bin/{name}"));
        let text = format!(
            "#!/bin/sh\nK='{k}'\nKANBAN=\"$K\"\nOUT='{out}'\n{body}\n",
            k = self.bin().display(),
            out = self.path("out").display()
        );
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(EXECUTABLE)).unwrap();
        p
    }

    /// `<root>/trace`, where [`Sandbox::traced_worker`] scripts log.
    pub fn trace_dir(&self) -> PathBuf {
        self.root().join("trace")
    }

    /// A worker script (see [`Sandbox::script`]) that also has `$TASK` and
    /// `$TRACE` set and appends `start <ns> <pid>` before `body` and
    /// `end <ns> <pid>` after it to `<trace>/<task>.log`.
    pub fn traced_worker(&self, name: &str, body: &str) -> PathBuf {
        std::fs::create_dir_all(self.trace_dir()).unwrap();
        let body = format!(
            "TASK=\"$HERMES_KANBAN_TASK\"\n\
             TRACE='{trace}'/\"$TASK\".log\n\
             echo \"start $(date +%s%N) $$\" >> \"$TRACE\"\n\
             {body}\n\
             echo \"end $(date +%s%N) $$\" >> \"$TRACE\"",
            trace = self.trace_dir().display(),
        );
        self.script(&format!("{name}.sh"), &body)
    }

    /// Worker start/end intervals (ns) of one task, from its trace
    /// (`None` end: still running or killed).
    pub fn trace(&self, task: &str) -> Vec<(u128, Option<u128>)> {
        let text = std::fs::read_to_string(self.trace_dir().join(format!("{task}.log")))
            .unwrap_or_default();
        let mut open: HashMap<String, u128> = HashMap::new();
        let mut spans = Vec::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (Some(kind), Some(ns), Some(pid)) = (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let ns: u128 = ns.parse().unwrap_or(0);
            match *kind {
                "start" => {
                    open.insert(pid.to_string(), ns);
                }
                "end" => {
                    if let Some(s) = open.remove(*pid) {
                        spans.push((s, Some(ns)));
                    }
                }
                _ => {}
            }
        }
        spans.extend(open.into_values().map(|s| (s, None)));
        spans.sort();
        spans
    }

    /// A config-defined profile running `<script> {task_id}`.
    pub fn profile(&mut self, name: &str, body: &str) {
        let s = self.script(&format!("{name}.sh"), body);
        self.profile_argv(name, vec![s.display().to_string(), "{task_id}".into()]);
    }

    /// A config-defined profile running `argv` (template placeholders kept).
    pub fn profile_argv(&mut self, name: &str, argv: Vec<String>) {
        self.profiles.push((name.into(), argv));
        self.write_profiles();
    }

    /// Extra lines under `kanban:` (two-space indented keys).
    pub fn kanban_config(&mut self, extra: &str) {
        self.kanban_extra = extra.to_string();
        self.write_profiles();
    }

    fn write_profiles(&self) {
        let profiles: Vec<(&str, Vec<&str>)> = self
            .profiles
            .iter()
            .map(|(n, argv)| (n.as_str(), argv.iter().map(String::as_str).collect()))
            .collect();
        self.write_config(&config_yaml(&self.kanban_extra, &profiles));
    }

    /// `<root>/config.yaml`, written then renamed: a gateway re-reading
    /// it never sees half a file.
    pub fn write_config(&self, yaml: &str) {
        let tmp = self.root().join("config.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.root().join("config.yaml")).unwrap();
    }

    /// The config of one profile running `/bin/sh <script>`, plus `extra`
    /// lines under `kanban:`.
    pub fn config_with_worker(&self, profile: &str, script: &Path, extra: &str) -> String {
        let script = script.display().to_string();
        config_yaml(extra, &[(profile, vec!["/bin/sh", &script])])
    }
}

/// `kanban:` with `extra` lines (two-space indented) and the profiles.
pub fn config_yaml(extra: &str, profiles: &[(&str, Vec<&str>)]) -> String {
    let mut y = String::from("kanban:\n");
    y.push_str(extra);
    y.push_str("  profiles:\n");
    for (name, argv) in profiles {
        let items: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
        y.push_str(&format!(
            "    {name}:\n      command: [{}]\n",
            items.join(", ")
        ));
    }
    y
}

/// `KEY=value` lines of an `env` dump.
pub fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
