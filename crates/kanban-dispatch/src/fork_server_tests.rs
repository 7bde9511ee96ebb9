use super::*;

#[test]
fn a_request_survives_its_encoding() {
    let req = StartRequest {
        args: vec!["--record-dir".into(), "/r".into(), "--".into(), "sh".into()],
        env: vec![b"A=1".to_vec(), b"B=x=y".to_vec(), vec![b'C', b'=', 0xff]],
        cwd: Some(PathBuf::from("/tmp/ws")),
    };
    assert_eq!(decode_request(&encode_request(&req)), Some(req.clone()));
    let no_cwd = StartRequest { cwd: None, ..req };
    assert_eq!(decode_request(&encode_request(&no_cwd)), Some(no_cwd));
}

#[test]
fn a_truncated_or_padded_request_is_refused() {
    let req = StartRequest {
        args: vec!["a".into()],
        env: vec![b"K=V".to_vec()],
        cwd: None,
    };
    let msg = encode_request(&req);
    for cut in 0..msg.len() {
        assert_eq!(decode_request(&msg[..cut]), None, "cut at {cut}");
    }
    let mut padded = msg.clone();
    padded.push(0);
    assert_eq!(decode_request(&padded), None);
}

#[test]
fn notes_survive_their_encoding() {
    for note in [
        Note::Started {
            pid: 42,
            start_time: Some(123_456),
        },
        Note::Started {
            pid: 7,
            start_time: None,
        },
        Note::Failed {
            errno: libc::EAGAIN,
        },
        Note::Exited {
            pid: 42,
            start_time: Some(9),
            status: 75 << 8,
        },
    ] {
        assert_eq!(decode_note(&encode_note(note)), Some(note));
    }
    assert_eq!(decode_note(b"Z"), None);
    assert_eq!(decode_note(&[]), None);
}

#[test]
fn the_helper_is_on_unless_switched_off() {
    assert!(fork_server_wanted(None));
    assert!(fork_server_wanted(Some("1")));
    assert!(fork_server_wanted(Some("")));
    for off in ["0", "off", "FALSE", " no "] {
        assert!(!fork_server_wanted(Some(off)), "{off}");
    }
}

/// A stand-in helper: `sh -c script`, the socket on fd 3.
fn stand_in(script: &str) -> ForkServer {
    let args = ["-c".to_string(), script.to_string()];
    ForkServer::start("sh", &args, vec!["kanban".into(), "__worker-exec".into()]).unwrap()
}

/// Neither running nor a zombie of ours.
fn gone(pid: i32) -> bool {
    // SAFETY: waitpid on a pid of ours only reads its status.
    let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == -1;
    reaped && !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_dropped_server_ends_and_reaps_its_helper() {
    // Reads the socket until its end, as the real helper does.
    let server = stand_in("cat <&3 >/dev/null");
    let pid = server.server_pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let started = std::time::Instant::now();
    drop(server);
    assert!(gone(pid), "helper {pid} left behind");
    assert!(
        started.elapsed() < HELPER_EXIT_WAIT,
        "waited for the timeout"
    );
}

#[test]
fn a_helper_that_ignores_the_end_is_killed() {
    let server = stand_in("exec sleep 30");
    let pid = server.server_pid();
    drop(server);
    assert!(gone(pid), "helper {pid} left behind");
}

#[test]
fn only_the_wrappers_argv_is_served() {
    let server = stand_in("cat <&3 >/dev/null");
    let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(server.serves(&argv(&["kanban", "__worker-exec", "--record-dir", "d"])));
    assert!(!server.serves(&argv(&["kanban", "__worker-exec"])));
    assert!(!server.serves(&argv(&["sh", "-c", "true"])));
    server.alive.store(false, Ordering::SeqCst);
    assert!(!server.serves(&argv(&["kanban", "__worker-exec", "x"])));
}
