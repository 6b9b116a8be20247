//! `JettyAdminServer`: the AdminServer's HTTP endpoint, on the shared blocking HTTP
//! server (`server::util::http_server`). It answers `GET <commandURL>/<name>` with the
//! command's JSON, `GET <commandURL>` with the index of links, 405 for other methods on
//! the command URL and 404 elsewhere, as Jetty's servlet does.

use std::sync::Arc;

use super::commands::{self, Context};
use super::AdminServerConfig;
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::util::http_server::{error_page, HttpServer, Reply, Request};
use crate::server::zookeeper_server::ZooKeeperServer;

/// Where commands find the server: a standalone server, or a quorum peer whose
/// serving server comes and goes with its role (`setZooKeeperServer`).
#[derive(Clone)]
pub enum Target {
    Standalone(Arc<ZooKeeperServer>),
    Quorum(Arc<QuorumPeer>),
}

impl Target {
    pub fn server(&self) -> Option<Arc<ZooKeeperServer>> {
        match self {
            Target::Standalone(z) => Some(z.clone()),
            Target::Quorum(p) => p.active_server(),
        }
    }

    fn peer(&self) -> Option<&Arc<QuorumPeer>> {
        match self {
            Target::Standalone(_) => None,
            Target::Quorum(p) => Some(p),
        }
    }
}

pub struct JettyAdminServer {
    http: HttpServer,
}

impl JettyAdminServer {
    /// `start`: binds and serves, or the error upstream's `AdminServerException` says.
    pub fn start(config: AdminServerConfig, target: Target) -> Result<JettyAdminServer, String> {
        let url = config.command_url.clone();
        let handler = Arc::new(move |req: &Request| respond(req, &url, &target));
        let tls = config.tls().map_err(|e| {
            format!("Problem starting AdminServer on address {}, port {} and command URL {}: {e}", config.address, config.port, config.command_url)
        })?;
        let http = HttpServer::start("AdminServer", &config.address, config.port, config.idle_timeout_ms, tls, handler).map_err(|e| {
            format!(
                "Problem starting AdminServer on address {}, port {} and command URL {}: {e}",
                config.address, config.port, config.command_url
            )
        })?;
        log::info!(
            "Started AdminServer on address {}, port {} and command URL {}",
            config.address,
            http.local_addr().port(),
            config.command_url
        );
        Ok(JettyAdminServer { http })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.http.local_addr()
    }

    pub fn shutdown(&mut self) {
        self.http.shutdown();
    }
}

fn respond(req: &Request, command_url: &str, target: &Target) -> Reply {
    let url = command_url.trim_end_matches('/');
    let rest = if req.path == url {
        Some("")
    } else {
        req.path.strip_prefix(url).filter(|r| r.starts_with('/'))
    };
    // Jetty checks the method before the path: TRACE is refused by a security
    // constraint on every path, methods the servlet API has no handler for get 405
    // anywhere, GET and HEAD outside the command URL 404.
    match req.method.as_str() {
        "GET" | "HEAD" => {}
        "TRACE" => return error_page(403, "Forbidden"),
        "OPTIONS" if rest.is_some() => {
            return Reply {
                status: 200,
                reason: "OK",
                content_type: None,
                extra: vec![("Allow", "GET, HEAD, TRACE, OPTIONS".into())],
                body: Vec::new(),
            }
        }
        "OPTIONS" => return error_page(404, "Not Found"),
        _ => return error_page(405, "Method Not Allowed"),
    }
    let Some(rest) = rest else {
        return error_page(404, "Not Found");
    };
    let name = rest.strip_prefix('/').unwrap_or(rest);
    if name.is_empty() {
        // The index: a link and a <br/> per primary name, one per line.
        let mut body = String::new();
        for c in commands::primary_names() {
            body.push_str(&format!("<a href=\"{url}/{c}\">{c}</a>\n<br/>\n"));
        }
        return Reply { status: 200, reason: "OK", content_type: None, extra: vec![], body: body.into_bytes() };
    }
    let zks = target.server();
    if zks.is_none() && commands::fails_without_server(name) {
        return error_page(500, "Server Error");
    }
    let ctx = Context { zks: zks.as_ref(), peer: target.peer(), kwargs: &req.query };
    let response = commands::run_command(name, &ctx);
    Reply {
        status: 200,
        reason: "OK",
        content_type: Some("application/json"),
        extra: vec![],
        body: response.to_json().pretty().into_bytes(),
    }
}

