//! MCP routes against a minimal Streamable HTTP upstream (JSON or SSE
//! answers): per-tool decisions, filtered listings, batches and
//! notifications. The official SDKs on both sides are exercised by the
//! binary's end-to-end test.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// An MCP-speaking upstream: `/json` answers JSON, `/sse` answers SSE.
async fn mcp_upstream() -> (String, Log) {
    let log: Log = Log::default();
    let app = Router::new()
        .route("/{mode}", axum::routing::post(answer))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn reply(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let result = match msg["method"].as_str()? {
        "tools/list" => json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}},
            {"name": "delete_repo", "inputSchema": {"type": "object"}},
        ]}),
        "tools/call" => {
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}]})
        }
        _ => json!({}),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn answer(
    State(log): State<Log>,
    Path(mode): Path<String>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    log.lock().unwrap().push(Seen {
        method: "POST".into(),
        uri: format!("/{mode}"),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    let v: Value = serde_json::from_slice(&body).unwrap();
    let replies: Vec<Value> = match &v {
        Value::Array(items) => items.iter().filter_map(reply).collect(),
        one => reply(one).into_iter().collect(),
    };
    if replies.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    let out = if v.is_array() {
        Value::Array(replies.clone())
    } else {
        replies[0].clone()
    };
    if mode == "sse" {
        let events: String = replies
            .iter()
            .map(|r| format!("event: message\r\ndata: {r}\r\n\r\n"))
            .collect();
        return ([(http::header::CONTENT_TYPE, "text/event-stream")], events).into_response();
    }
    axum::Json(out).into_response()
}

async fn rpc(env: &Env, token: &str, body: Value) -> (StatusCode, String) {
    let r = client()
        .post(format!("{}/gw/api", env.url))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn sse_data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tools_are_decided_one_by_one_and_listings_filtered_in_json_answers() {
    let (up, log) = mcp_upstream().await;
    let env = env_kind(&format!("{up}/json"), "mcp", &[]).await;
    let token = env.token("api", "read", None).await;

    let (status, body) = rpc(
        &env,
        &token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&serde_json::from_str(&body).unwrap()), ["echo"]);

    let call = |id: i64, tool: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": tool, "arguments": {"text": "hi", "repo": "acme/web"}}})
    };
    let (status, body) = rpc(&env, &token, call(2, "echo")).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "hi");

    let before = log.lock().unwrap().len();
    let (status, body) = rpc(&env, &token, call(3, "delete_repo")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a denial is a JSON-RPC error, not a transport failure"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], 3);
    assert_eq!(v["error"]["code"], mandate_gateway::mcp::ACCESS_DENIED);
    assert_eq!(v["error"]["data"]["policies"][0], "no-deletes");
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "the denied call reached the upstream"
    );
    let ev = &env.events("gateway.mcp").await[0];
    assert_eq!(ev.outcome.as_str(), "denied");
    assert_eq!(ev.detail["tool"], "delete_repo");
    assert_eq!(ev.detail["decision"]["policies"][0], "no-deletes");
    assert!(ev.detail["arguments_sha256"].is_string());
    assert!(
        ev.detail.get("arguments").is_none(),
        "arguments are recorded only on opt-in"
    );

    // A batch: the allowed call goes up, the denied one is answered here.
    let (status, body) = rpc(
        &env,
        &token,
        json!([call(4, "echo"), call(5, "delete_repo")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|i| i["id"] == 4 && i["result"].is_object())
    );
    assert!(
        items
            .iter()
            .any(|i| i["id"] == 5 && i["error"]["code"] == mandate_gateway::mcp::ACCESS_DENIED)
    );
    let last = log.lock().unwrap().last().cloned().unwrap();
    assert!(!String::from_utf8_lossy(&last.body).contains("delete_repo"));

    // A notification passes.
    let (status, _) = rpc(
        &env,
        &token,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn listings_are_filtered_in_sse_answers_too() {
    let (up, _log) = mcp_upstream().await;
    let env = env_kind(&format!("{up}/sse"), "mcp", &[]).await;
    let token = env.token("api", "read", None).await;
    let (status, body) = rpc(
        &env,
        &token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = sse_data(&body);
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(names(&events[0]), ["echo"]);
    let (_, body) = rpc(
        &env,
        &token,
        json!([{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "delete_repo", "arguments": {}}},
               {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}]),
    )
    .await;
    let events = sse_data(&body);
    assert!(
        events
            .iter()
            .any(|e| e["id"] == 7 && e["error"]["code"] == mandate_gateway::mcp::ACCESS_DENIED),
        "{body}"
    );
    assert!(
        events.iter().any(|e| e["id"] == 8 && names(e) == ["echo"]),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_messages_get_json_rpc_errors() {
    let (up, log) = mcp_upstream().await;
    let env = env_kind(&format!("{up}/json"), "mcp", &[]).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .post(format!("{}/gw/api", env.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    let (status, body) = rpc(
        &env,
        &token,
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32602
    );
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mcp_name_header_disagreeing_with_the_body_is_refused() {
    let (up, log) = mcp_upstream().await;
    let env = env_kind(&format!("{up}/json"), "mcp", &[]).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .post(format!("{}/gw/api", env.url))
        .bearer_auth(&token)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "delete_repo", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(log.lock().unwrap().is_empty());
}
