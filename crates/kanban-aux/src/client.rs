//! Reaching the auxiliary model: an OpenAI-compatible chat-completions
//! endpoint over HTTP (hosted, or local such as Ollama and vLLM), or a
//! command template run as a process (prompt on stdin, answer on stdout).
//! Both return the model's text; callers validate it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kanban_hermes::auxiliary::{AuxModelConfig, AuxiliaryConfig, default_timeout_seconds};
use serde_json::{Value, json};

use crate::AuxError;

/// Most bytes of a model answer read; a longer one is refused as hostile.
pub const MAX_ANSWER_BYTES: u64 = 256 * 1024;
/// How often a command's exit is polled while waiting for it.
const COMMAND_POLL: Duration = Duration::from_millis(20);

/// One chat turn: a system prompt and a user message.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    pub system: &'a str,
    pub user: &'a str,
    pub temperature: f64,
    pub max_tokens: u32,
}

/// Something that answers a [`ChatRequest`] with text.
pub trait ModelClient: Send + Sync {
    fn chat(&self, req: &ChatRequest<'_>) -> Result<String, AuxError>;
}

/// The client configured for `task`, `None` when it is not configured.
/// `var` reads the environment (the API key variable).
pub fn client_for(
    aux: &AuxiliaryConfig,
    task: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<Box<dyn ModelClient>> {
    let cfg = aux.for_task(task)?;
    let timeout = Duration::from_secs_f64(
        cfg.timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(default_timeout_seconds(task) as f64),
    );
    if !cfg.command.is_empty() {
        return Some(Box::new(CommandClient {
            cfg: cfg.clone(),
            task: task.to_string(),
            timeout,
        }));
    }
    let key = cfg
        .api_key_env
        .as_deref()
        .and_then(var)
        .or_else(|| cfg.api_key.clone())
        .filter(|k| !k.trim().is_empty());
    Some(Box::new(HttpClient {
        base_url: cfg.base_url.clone().unwrap_or_default(),
        model: cfg.model.clone().unwrap_or_default(),
        api_key: key,
        extra_body: cfg.extra_body.clone(),
        timeout,
    }))
}

/// `POST {base_url}/chat/completions`.
pub struct HttpClient {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub extra_body: Option<Value>,
    pub timeout: Duration,
}

impl ModelClient for HttpClient {
    fn chat(&self, req: &ChatRequest<'_>) -> Result<String, AuxError> {
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
            "stream": false,
        });
        if let (Some(Value::Object(extra)), Some(obj)) = (&self.extra_body, body.as_object_mut()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut call = agent.post(&url).header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            call = call.header("Authorization", &format!("Bearer {key}"));
        }
        let mut resp = call
            .send(body.to_string())
            .map_err(|e| AuxError::Transport(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| AuxError::Transport(format!("{url}: reading the answer: {e}")))?;
        if !(200..300).contains(&status) {
            let detail: String = text.chars().take(200).collect();
            return Err(AuxError::Transport(format!(
                "{url}: HTTP {status}: {detail}"
            )));
        }
        completion_content(&text).ok_or_else(|| {
            AuxError::Malformed("the endpoint's answer has no choices[0].message.content".into())
        })
    }
}

/// `choices[0].message.content` of a chat-completions answer.
pub fn completion_content(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.pointer("/choices/0/message/content")?
        .as_str()
        .map(str::to_string)
}

/// A command template: `{model}` and `{task}` in the argv are filled in;
/// the prompt goes to stdin; stdout is the answer (plain text, or a
/// chat-completions JSON answer whose content is taken).
pub struct CommandClient {
    pub cfg: AuxModelConfig,
    pub task: String,
    pub timeout: Duration,
}

impl CommandClient {
    fn argv(&self) -> Vec<String> {
        let model = self.cfg.model.clone().unwrap_or_default();
        self.cfg
            .command
            .iter()
            .map(|a| a.replace("{model}", &model).replace("{task}", &self.task))
            .collect()
    }
}

impl ModelClient for CommandClient {
    fn chat(&self, req: &ChatRequest<'_>) -> Result<String, AuxError> {
        let argv = self.argv();
        let prompt = format!("{}\n\n{}", req.system, req.user);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(&self.cfg.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Its own process group, so a timeout ends what it started too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(|e| AuxError::Transport(format!("cannot run {:?}: {e}", argv[0])))?;
        let mut stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(prompt.as_bytes());
            }
        });
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stdout)
                .take(MAX_ANSWER_BYTES + 1)
                .read_to_end(&mut buf);
            buf
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() >= self.timeout => {
                    kill_group(child.id());
                    let _ = child.wait();
                    return Err(AuxError::Transport(format!(
                        "{:?} did not answer within {}s",
                        argv[0],
                        self.timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(COMMAND_POLL),
                Err(e) => return Err(AuxError::Transport(e.to_string())),
            }
        };
        let _ = writer.join();
        let out = reader.join().unwrap_or_default();
        if !status.success() {
            return Err(AuxError::Transport(format!(
                "{:?} exited with {status}",
                argv[0]
            )));
        }
        if out.len() as u64 > MAX_ANSWER_BYTES {
            return Err(AuxError::Malformed(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok(completion_content(&text).unwrap_or(text))
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: signalling a process group we created; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ChatRequest<'static> {
        ChatRequest {
            system: "sys",
            user: "hello",
            temperature: 0.0,
            max_tokens: 10,
        }
    }

    fn command(argv: &[&str], timeout: Duration) -> CommandClient {
        CommandClient {
            cfg: AuxModelConfig {
                command: argv.iter().map(|s| s.to_string()).collect(),
                model: Some("m1".into()),
                ..Default::default()
            },
            task: "goal_judge".into(),
            timeout,
        }
    }

    #[test]
    fn command_reads_stdin_and_fills_placeholders() {
        let c = command(
            &[
                "sh",
                "-c",
                "cat >/dev/null; printf '%s %s' \"$0\" \"$1\"",
                "{model}",
                "{task}",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(c.chat(&req()).unwrap(), "m1 goal_judge");
        let echo = command(&["cat"], Duration::from_secs(20));
        assert_eq!(echo.chat(&req()).unwrap(), "sys\n\nhello");
    }

    #[test]
    fn command_failures_are_transport_errors() {
        let slow = command(&["sleep", "30"], Duration::from_millis(200));
        assert!(matches!(slow.chat(&req()), Err(AuxError::Transport(_))));
        let failing = command(&["false"], Duration::from_secs(20));
        assert!(matches!(failing.chat(&req()), Err(AuxError::Transport(_))));
        let missing = command(&["/nonexistent/model-cli"], Duration::from_secs(20));
        assert!(matches!(missing.chat(&req()), Err(AuxError::Transport(_))));
    }

    #[test]
    fn chat_completion_content_is_unwrapped() {
        let text = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(completion_content(text).as_deref(), Some("hi"));
        assert_eq!(completion_content("plain"), None);
    }
}
