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
