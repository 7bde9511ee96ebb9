//! Attachment blobs and worker logs kept in the board by backends that
//! hosts share (`kanban_store::board_files`, ADR 0002). A backend either
//! keeps both (every host reads them from the board) or neither (the files
//! are the blobs and logs, SQLite's Hermes layout); each test checks the
//! contract of whichever mode the backend declares.

use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_store::board_files::{LOG_RUNS_KEPT, LogRange, LogSlice, WorkerLogAppend};
use kanban_store::{NewAttachment, Store, StoreError};

use crate::support::*;

fn attachment_at(task_id: &str, path: &std::path::Path) -> NewAttachment {
    NewAttachment {
        task_id: task_id.into(),
        filename: "report.txt".into(),
        stored_path: path.display().to_string(),
        content_type: Some("text/plain".into()),
        size: 0,
        uploaded_by: Some("worker".into()),
    }
}

pub fn attachment_blobs_are_kept_by_boards_that_keep_logs(s: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let t = create(s, "with a blob");
    let path = dir.path().join("report.txt");
    let content = b"line one\n\0binary\xff tail".to_vec();
    std::fs::write(&path, &content).unwrap();
    let a = s.add_attachment(&attachment_at(&t.id, &path)).unwrap();
    let blob = s.attachment_blob(a.id).unwrap();
    if !s.keeps_worker_logs() {
        assert_eq!(blob, None, "a file-backed board keeps no blob");
        return;
    }
    assert_eq!(blob, Some(content), "the blob as the file held it");
    // The copy is the board's: the file may go (it is on another host).
    std::fs::remove_file(&path).unwrap();
    assert!(s.attachment_blob(a.id).unwrap().is_some());
    // A row whose file is not on this host keeps no copy.
    let elsewhere = s
        .add_attachment(&attachment_at(&t.id, &dir.path().join("missing")))
        .unwrap();
    assert_eq!(s.attachment_blob(elsewhere.id).unwrap(), None);
    // Over the attachment cap: refused, no row.
    let big = dir.path().join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(ATTACHMENT_MAX_BYTES + 1).unwrap();
    let before = s.attachments(&t.id).unwrap().len();
    let err = s.add_attachment(&attachment_at(&t.id, &big));
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    assert_eq!(s.attachments(&t.id).unwrap().len(), before);
    // Removing the row removes the copy; so does deleting the task.
    s.remove_attachment(a.id).unwrap();
    assert_eq!(s.attachment_blob(a.id).unwrap(), None);
    std::fs::write(&path, b"again").unwrap();
    let b = s.add_attachment(&attachment_at(&t.id, &path)).unwrap();
    s.delete_task(&t.id, false).unwrap();
    assert_eq!(s.attachment_blob(b.id).unwrap(), None);
}

fn append(task: &str, run: i64, offset: u64, bytes: &[u8], replace: bool) -> WorkerLogAppend {
    WorkerLogAppend {
        task_id: task.into(),
        run_id: run,
        offset,
        bytes: bytes.to_vec(),
        replace,
        max_run_bytes: 32,
    }
}

fn whole(s: &dyn Store, task: &str) -> Option<LogSlice> {
    s.worker_log(
        task,
        LogRange::Page {
            offset: 0,
            limit: u64::MAX,
        },
    )
    .unwrap()
}

fn text(slice: Option<LogSlice>) -> String {
    String::from_utf8(slice.expect("a kept log").bytes).unwrap()
}

pub fn worker_logs_are_kept_in_order_under_the_run_cap(s: &dyn Store) {
    let t = create(s, "logging");
    s.append_worker_log(&append(&t.id, 7, 0, b"hello ", false))
        .unwrap();
    if !s.keeps_worker_logs() {
        assert_eq!(whole(s, &t.id), None, "appends are no-ops");
        return;
    }
    assert_eq!(whole(s, "t_unknown"), None);
    s.append_worker_log(&append(&t.id, 7, 6, b"world\n", false))
        .unwrap();
    let all = whole(s, &t.id).unwrap();
    assert_eq!((all.size, all.offset), (12, 0));
    assert_eq!(text(Some(all)), "hello world\n");
    let tail = s.worker_log(&t.id, LogRange::Tail(8)).unwrap().unwrap();
    assert_eq!(
        (tail.size, tail.offset, &tail.bytes[..]),
        (12, 4, &b"o world\n"[..])
    );
    let page = s
        .worker_log(
            &t.id,
            LogRange::Page {
                offset: 3,
                limit: 5,
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(page.bytes, b"lo wo");
    // The run cap (32 bytes): what lies beyond it is not kept.
    s.append_worker_log(&append(&t.id, 7, 12, &[b'x'; 40], false))
        .unwrap();
    assert_eq!(whole(s, &t.id).unwrap().size, 32);
    // A cut: everything from the offset on is replaced, a chunk that
    // reaches across it keeps only its part before it.
    s.append_worker_log(&append(&t.id, 7, 8, b"[cut]tail\n", true))
        .unwrap();
    assert_eq!(text(whole(s, &t.id)), "hello wo[cut]tail\n");
    // Runs follow each other in run order.
    s.append_worker_log(&append(&t.id, 9, 0, b"second\n", false))
        .unwrap();
    assert_eq!(text(whole(s, &t.id)), "hello wo[cut]tail\nsecond\n");
    // Only the latest runs are kept.
    for run in 10..10 + LOG_RUNS_KEPT {
        s.append_worker_log(&append(
            &t.id,
            run,
            0,
            format!("r{run}\n").as_bytes(),
            false,
        ))
        .unwrap();
    }
    let kept: String = (10..10 + LOG_RUNS_KEPT)
        .map(|r| format!("r{r}\n"))
        .collect();
    assert_eq!(text(whole(s, &t.id)), kept);
    // The task's deletion takes its logs along.
    s.delete_task(&t.id, false).unwrap();
    assert_eq!(whole(s, &t.id), None);
}
