//! Attachment routes: upload, list, download, delete, and the refusals
//! (path traversal, size cap, unknown task, blobs outside the root).

mod common;

use common::*;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_store::NewAttachment;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn upload(s: &TestServer, task: &str, name: &str, data: Vec<u8>) -> (u16, Value) {
    let part = Part::bytes(data)
        .file_name(name.to_string())
        .mime_str("text/plain")
        .unwrap();
    let form = Form::new().part("file", part).text("uploaded_by", "alice");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/tasks/{task}/attachments")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    decode(r).await
}

#[tokio::test]
async fn upload_list_download_delete() {
    let s = TestServer::start().await;
    let id = s.create(json!({"title": "files"})).await;
    let (st, v) = upload(&s, &id, "notes.txt", b"hello".to_vec()).await;
    assert_eq!(st, 200, "{v}");
    let att = &v["attachment"];
    assert_eq!(att["filename"], "notes.txt");
    assert_eq!(att["size"], 5);
    assert_eq!(att["uploaded_by"], "alice");
    let stored = att["stored_path"].as_str().unwrap().to_string();
    let root = s.root.board_paths("default").attachments_root;
    assert!(
        std::path::Path::new(&stored).starts_with(root.join(&id)),
        "{stored}"
    );
    let att_id = att["id"].as_i64().unwrap();

    // Same name again: a second file, not an overwrite.
    let (st, v) = upload(&s, &id, "notes.txt", b"again".to_vec()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["attachment"]["filename"], "notes (1).txt");

    let (st, v) = s.get(&format!("/api/v1/tasks/{id}/attachments")).await;
    assert_eq!(st, 200);
    assert_eq!(v["attachments"].as_array().unwrap().len(), 2);
    let (_, detail) = s.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(detail["attachments"].as_array().unwrap().len(), 2);
    assert!(
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "attached")
    );

    let r = s
        .client
        .get(s.url(&format!("/api/v1/attachments/{att_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello");

    let (st, v) = s.delete(&format!("/api/v1/attachments/{att_id}")).await;
    assert_eq!(st, 200, "{v}");
    assert!(!std::path::Path::new(&stored).exists(), "blob removed");
    let (st, _) = s.delete(&format!("/api/v1/attachments/{att_id}")).await;
    assert_eq!(st, 404);
    let (st, _) = s.get(&format!("/api/v1/attachments/{att_id}")).await;
    assert_eq!(st, 404);

    // Deleting the task removes the remaining blob too.
    let (_, v) = s.get(&format!("/api/v1/tasks/{id}/attachments")).await;
    let left = v["attachments"][0]["stored_path"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s.delete(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(st, 200);
    assert!(!std::path::Path::new(&left).exists());
    s.stop().await;
}

#[tokio::test]
async fn bad_uploads_change_nothing() {
    let s = TestServer::start().await;
    let id = s.create(json!({"title": "files"})).await;
    for name in ["../../etc/passwd", "a/b.txt", "..", "x\0y.txt", ".hidden"] {
        let (st, v) = upload(&s, &id, name, b"x".to_vec()).await;
        assert_eq!(st, 400, "{name:?}: {v}");
        err_detail(&v);
    }
    let long = format!("{}.txt", "a".repeat(200));
    let (st, _) = upload(&s, &id, &long, b"x".to_vec()).await;
    assert_eq!(st, 400, "names over 200 characters");
    let (st, v) = upload(&s, "t_00000000", "a.txt", b"x".to_vec()).await;
    assert_eq!(st, 404, "{v}");

    let big = vec![b'x'; ATTACHMENT_MAX_BYTES as usize + 1];
    let (st, v) = upload(&s, &id, "big.bin", big).await;
    assert_eq!(st, 413, "{v}");

    let (_, v) = s.get(&format!("/api/v1/tasks/{id}/attachments")).await;
    assert_eq!(v["attachments"], json!([]));
    let dir = s.root.board_paths("default").attachments_root.join(&id);
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "no partial blob left behind");

    let r = s
        .client
        .post(s.url(&format!("/api/v1/tasks/{id}/attachments")))
        .multipart(Form::new().text("uploaded_by", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the file field is required");
    s.stop().await;
}

#[tokio::test]
async fn downloads_stay_under_the_attachments_root() {
    let s = TestServer::start().await;
    let id = s.create(json!({"title": "tampered"})).await;
    let outside = s.dir.path().join("secret.txt");
    std::fs::write(&outside, b"secret").unwrap();
    let att = s
        .other_store()
        .add_attachment(&NewAttachment {
            task_id: id.clone(),
            filename: "secret.txt".into(),
            stored_path: outside.display().to_string(),
            size: 6,
            ..Default::default()
        })
        .unwrap();
    let (st, v) = s.get(&format!("/api/v1/attachments/{}", att.id)).await;
    assert_eq!(st, 404, "{v}");
    let (st, _) = s.delete(&format!("/api/v1/attachments/{}", att.id)).await;
    assert_eq!(st, 200);
    assert!(outside.exists(), "a blob outside the root is never deleted");
    s.stop().await;
}
