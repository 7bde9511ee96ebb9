//! `GET /api/v1/events?since=<id>&board=<slug>`: the live event feed.
//!
//! A client first gets every event after `since` from the store, in id
//! order, then live batches from the board's single watcher (see `hub`).
//! It subscribes to the broadcast *before* reading the backlog, so no
//! event falls between the two; duplicates are dropped by id. A client too
//! slow for the broadcast buffer re-reads the store from its cursor.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use kanban_core::Event;
use kanban_core::defaults::EVENT_BATCH_LIMIT;
use kanban_store::EventQuery;
use tokio::sync::broadcast::error::RecvError;

use crate::api::{ApiQuery, EventsQuery, blocking};
use crate::error::{ApiResult, ErrorBody};
use crate::hub::{Board, EventBatch};
use crate::state::AppState;

/// Upgrade to the event feed (the board is resolved first: 400/404).
#[utoipa::path(get, path = "/api/v1/events", params(EventsQuery), tag = "events",
    description = "WebSocket. Sends `EventBatch` JSON text messages: every event after `since`, then live ones.",
    responses((status = 101, description = "Switching to the WebSocket feed", body = EventBatch),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let hub = st.hub.clone();
    let board = blocking(move || hub.board(q.board.as_deref())).await?;
    let since = q.since.unwrap_or(0).max(0);
    let shutdown = st.shutdown.clone();
    Ok(ws.on_upgrade(move |socket| feed(socket, board, since, shutdown)))
}

struct ClientGauge;
impl ClientGauge {
    fn new() -> ClientGauge {
        metrics::gauge!(crate::metrics::WS_CLIENTS).increment(1.0);
        ClientGauge
    }
}
impl Drop for ClientGauge {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::WS_CLIENTS).decrement(1.0);
    }
}

async fn send_batch(socket: &mut WebSocket, events: Vec<Event>, cursor: i64) -> bool {
    let text = match serde_json::to_string(&EventBatch { events, cursor }) {
        Ok(t) => t,
        Err(_) => return false,
    };
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// Send every stored event after `cursor`; false when the client is gone.
async fn backfill(socket: &mut WebSocket, board: &Arc<Board>, cursor: &mut i64) -> bool {
    loop {
        let (store, after) = (board.store.clone(), *cursor);
        let res = tokio::task::spawn_blocking(move || {
            store.events(&EventQuery {
                after_id: Some(after),
                limit: Some(EVENT_BATCH_LIMIT),
                ..Default::default()
            })
        })
        .await;
        let events = match res {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::warn!(board = %board.slug, error = %e, "event feed: cannot read events");
                return false;
            }
            Err(_) => return false,
        };
        let Some(last) = events.last() else {
            return true;
        };
        *cursor = last.id;
        let full = events.len() >= EVENT_BATCH_LIMIT;
        if !send_batch(socket, events, *cursor).await {
            return false;
        }
        if !full {
            return true;
        }
    }
}

async fn feed(
    mut socket: WebSocket,
    board: Arc<Board>,
    since: i64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let _gauge = ClientGauge::new();
    // Once the board is forgotten this may be its last reference.
    let board = crate::hub::DropOffRuntime::new(board);
    let mut live = board.subscribe_events();
    let mut cursor = since;
    if !backfill(&mut socket, &board, &mut cursor).await {
        return;
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pings are answered by the library; client text is ignored.
                Some(Ok(_)) => {}
            },
            batch = live.recv() => match batch {
                Ok(batch) => {
                    let fresh: Vec<Event> = batch.events.iter().filter(|e| e.id > cursor).cloned().collect();
                    if let Some(last) = fresh.last() {
                        cursor = last.id;
                        if !send_batch(&mut socket, fresh, cursor).await {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    if !backfill(&mut socket, &board, &mut cursor).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
