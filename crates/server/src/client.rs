//! A client of the REST API, used by the CLI's `--from` path, `vantage agents`, tests and
//! benchmarks: one implementation of the request bodies and the event stream, next to the server
//! that defines them.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use vantage_proto::MeasurementSpec;

use crate::Error;
use crate::api::types::{
    AgentList, EnrollmentTokenCreated, EntryCounts, EntryView, ErrorBody, MeasurementCreated,
    MeasurementView,
};

/// An event of a measurement's live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The measurement, without results (first event).
    Measurement(Box<MeasurementView>),
    /// One agent's entry became final.
    Result(Box<EntryView>),
    /// Every agent is done.
    End(EntryCounts),
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn unreachable(base: &str, e: reqwest::Error) -> Error {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    Error::Client(format!("{what} to the Vantage server at {base}: {e}"))
}

/// Turns an error response into [`Error::Api`].
async fn api_error(resp: reqwest::Response) -> Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => Error::Api {
            status: status.as_u16(),
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: "http".into(),
            message: format!("the server answered HTTP {status}: {}", text.trim()),
        },
    }
}

impl Client {
    /// A client for the API at `base` (`http://host:port`), with a bearer token.
    pub fn new(base: &str, token: &str) -> Result<Client, Error> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Client(format!(
                "'{base}' is not a server URL; write it as http://HOST:PORT, for example http://127.0.0.1:7780"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Client(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base,
            token: token.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, Error> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if !resp.status().is_success() {
            return Err(api_error(resp).await);
        }
        resp.json().await.map_err(|e| {
            Error::Client(format!(
                "the server's answer is not what this client expects: {e}"
            ))
        })
    }

    /// Creates a measurement of `spec` on the agents `selector` chooses.
    pub async fn create_measurement(
        &self,
        spec: &MeasurementSpec,
        selector: &str,
    ) -> Result<MeasurementCreated, Error> {
        let mut body = serde_json::to_value(spec)
            .map_err(|e| Error::Client(format!("cannot encode the measurement: {e}")))?;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("agents".into(), serde_json::Value::String(selector.into()));
        }
        self.json(self.http.post(self.url("/api/v1/measurements")).json(&body))
            .await
    }

    /// Reads a measurement with every agent's entry.
    pub async fn measurement(&self, id: Uuid) -> Result<MeasurementView, Error> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/measurements/{id}"))),
        )
        .await
    }

    /// Lists agents.
    pub async fn agents(&self) -> Result<AgentList, Error> {
        self.json(self.http.get(self.url("/api/v1/agents"))).await
    }

    /// Creates an enrolment token.
    pub async fn create_enrollment_token(
        &self,
        ttl_seconds: Option<f64>,
    ) -> Result<EnrollmentTokenCreated, Error> {
        let body = serde_json::json!({ "ttl_seconds": ttl_seconds });
        self.json(
            self.http
                .post(self.url("/api/v1/enrollment-tokens"))
                .json(&body),
        )
        .await
    }

    /// Opens the live stream of a measurement.
    pub async fn stream(&self, id: Uuid) -> Result<EventStream, Error> {
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/measurements/{id}/stream")))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if resp.status() != StatusCode::OK {
            return Err(api_error(resp).await);
        }
        Ok(EventStream {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
            ended: false,
        })
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<hyper::body::Bytes>> + Send>>;

/// Server-Sent Events of one measurement, decoded.
pub struct EventStream {
    body: ByteStream,
    buf: String,
    ended: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("ended", &self.ended)
            .finish()
    }
}

impl EventStream {
    /// The next event; `None` after `end` or when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        if self.ended {
            return None;
        }
        loop {
            // One event is the text up to a blank line.
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut name = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = match v.trim() {
                            "measurement" => "measurement",
                            "result" => "result",
                            "end" => "end",
                            _ => "other",
                        };
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                let bad = |e: serde_json::Error| {
                    Error::Client(format!("the server sent a malformed '{name}' event: {e}"))
                };
                let ev = match name {
                    "measurement" => serde_json::from_str(&data)
                        .map(|m| StreamEvent::Measurement(Box::new(m)))
                        .map_err(bad),
                    "result" => serde_json::from_str(&data)
                        .map(|e| StreamEvent::Result(Box::new(e)))
                        .map_err(bad),
                    "end" => {
                        self.ended = true;
                        serde_json::from_str(&data)
                            .map(StreamEvent::End)
                            .map_err(bad)
                    }
                    // Keep-alive comments and unknown events.
                    _ => continue,
                };
                return Some(ev);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buf
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(Error::Client(format!("the event stream broke: {e}"))));
                }
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}
