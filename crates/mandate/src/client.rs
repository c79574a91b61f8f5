//! The command-line client of the admin API.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use crate::config::DEFAULT_DATA_DIR;
use crate::serve::ADMIN_TOKEN_FILE;

/// How the client failed; printed, then the process exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{title} ({status}): {detail}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// Problem title.
        title: String,
        /// Problem detail.
        detail: String,
    },
    /// The server could not be reached or answered nonsense.
    #[error("{0}")]
    Transport(String),
    /// No admin token was found.
    #[error(
        "no admin token: pass --token or --token-file, set MANDATE_TOKEN, or run from the directory holding `{DEFAULT_DATA_DIR}/{ADMIN_TOKEN_FILE}`"
    )]
    NoToken,
}

/// A connection to one Mandate server.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Finds the admin token: flag, environment, token file, or the default
/// data directory's bootstrap token.
pub fn resolve_token(
    token: Option<String>,
    token_file: Option<PathBuf>,
) -> Result<String, ClientError> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    let file = token_file.or_else(|| {
        let data_dir =
            std::env::var("MANDATE_DATA_DIR").unwrap_or_else(|_| DEFAULT_DATA_DIR.to_owned());
        let p = Path::new(&data_dir).join(ADMIN_TOKEN_FILE);
        p.exists().then_some(p)
    });
    let Some(file) = file else {
        return Err(ClientError::NoToken);
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        ClientError::Transport(format!("cannot read token file `{}`: {e}", file.display()))
    })?;
    let t = text.trim().to_owned();
    if t.is_empty() {
        return Err(ClientError::NoToken);
    }
    Ok(t)
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8420`).
    pub fn new(base: &str, token: String) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot build http client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// Why a request did not get an answer; for a refused connection, how
    /// to start the server.
    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let hint = if e.is_connect() {
            "; is the server running? Start it with `mandate serve` (from a clone: \
             `cargo run -p mandate -- serve`), or point --url / MANDATE_URL at it"
        } else {
            ""
        };
        ClientError::Transport(format!("cannot reach {}: {e}{hint}", self.base))
    }

    /// Posts a form to the token endpoint (no admin token): the JSON
    /// answer, or the OAuth error as a problem.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Result<Value, ClientError> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let res = self
            .http
            .post(format!("{}/oauth2/token", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let json: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(ClientError::Problem {
            status: status.as_u16(),
            title: json
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("token request failed")
                .to_owned(),
            detail: json
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("no description")
                .to_owned(),
        })
    }

    /// Sends one request to the admin API and returns the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(format!("reading the answer from {url}: {e}")))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let field = json.get("field").and_then(Value::as_str);
        let mut detail = json
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail")
            .to_owned();
        if let Some(f) = field {
            detail = format!("{detail} (field `{f}`)");
        }
        // Located diagnostics (policy errors) read best one per line.
        if let Some(errs) = json.get("errors").and_then(Value::as_array) {
            for e in errs {
                if let (Some(file), Some(line), Some(col), Some(msg)) = (
                    e.get("file").and_then(Value::as_str),
                    e.get("line").and_then(Value::as_u64),
                    e.get("column").and_then(Value::as_u64),
                    e.get("message").and_then(Value::as_str),
                ) {
                    detail = format!("{detail}\n  {file}:{line}:{col}: {msg}");
                }
            }
        }
        Err(ClientError::Problem {
            status: status.as_u16(),
            title: json
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(status.canonical_reason().unwrap_or("error"))
                .to_owned(),
            detail,
        })
    }

    /// Follows `next_cursor` and gathers every item of a listing.
    pub async fn all_pages(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", "500".to_owned()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
            let page = self
                .call(Method::GET, &format!("{path}?{qs}"), None)
                .await?;
            if let Some(arr) = page.get("items").and_then(Value::as_array) {
                items.extend(arr.iter().cloned());
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(items),
            }
        }
    }
}

/// Prints rows as an aligned table with a header.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// A string field of a JSON object, or `-`.
/// The `items` array of a list answer (empty when there is none).
pub fn items(v: &Value) -> Vec<Value> {
    v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}
