//! Issue 9 item 8: deleting a running task through the API (the
//! dashboard's Delete) ends its worker's process group, as archive does.

use kanban_testkit::Sandbox;
use kanban_testkit::gateway::SETTLE_WAIT;
use kanban_testkit::{group_members, pid_alive, wait_for};

#[test]
fn deleting_a_running_task_ends_its_worker_process_group() {
    let board = Sandbox::new();
    std::fs::write(
        board.path("config.yaml"),
        "kanban:\n  profiles:\n    sleeper:\n      command: [sh, -c, 'sleep 120']\n",
    )
    .unwrap();
    let gw = board.gateway();
    let id = board.create("long job", &["--assignee", "sleeper"]);
    let pid = wait_for(SETTLE_WAIT, || {
        let t = gw
            .request("GET", &format!("/api/v1/tasks/{id}"), None)
            .json();
        (t["task"]["status"] == "running")
            .then(|| t["task"]["worker_pid"].as_i64())
            .flatten()
    })
    .expect("the gateway spawned the worker") as i32;
    assert!(pid_alive(pid), "worker {pid} runs");
    assert!(
        wait_for(SETTLE_WAIT, || (group_members(pid).len() >= 2)
            .then_some(()))
        .is_some(),
        "the worker's group holds the shell and its sleep"
    );

    let r = gw.request("DELETE", &format!("/api/v1/tasks/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["deleted"], true);

    let gone = wait_for(SETTLE_WAIT, || group_members(pid).is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "worker group {pid} still running after its task was deleted: {:?}",
        group_members(pid)
    );
    assert!(!pid_alive(pid));
    // The task is gone and the gateway carries on.
    assert_eq!(board.run(&["show", &id]).status.code(), Some(1));
    assert_eq!(gw.request("GET", "/healthz", None).status, 200);
}
