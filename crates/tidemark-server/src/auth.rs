//! Bearer tokens with `read` and `write` scopes, checked in constant time, and the rule that an
//! API without tokens is only served on loopback (unless the operator insists).
//!
//! Browsers may present a token as the `tidemark_token` cookie, and a cookie only ever grants
//! the read scope: a browser attaches cookies to requests other sites make it send, so a cookie
//! that could write would let any page the operator visits write to the store (cross-site
//! request forgery). Writes and administration need the `Authorization` header, which no other
//! site can make a browser send. (The server sets no cookie; operators who set one should mark
//! it `SameSite=Strict`.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// What a token may do. `write` includes `read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Queries, pages, exports.
    Read,
    /// Ingest and bridges, and everything `read` may.
    Write,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(Scope, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        write!(f, "Tokens({} configured)", self.entries.len())
    }
}

/// Why a token list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// A line or item that is not `SCOPE TOKEN`.
    #[error(
        "{origin}: entry {entry}: expected `read TOKEN` or `write TOKEN` (or `read:TOKEN` in the environment), found {found:?}"
    )]
    Malformed {
        /// The file or variable.
        origin: String,
        /// 1-based line or item.
        entry: usize,
        /// What was there (token characters masked).
        found: String,
    },
    /// A token too short to be a secret.
    #[error("{origin}: entry {entry}: a token must have at least 16 characters")]
    TooShort {
        /// The file or variable.
        origin: String,
        /// 1-based line or item.
        entry: usize,
    },
    /// A tokens file (or `TIDEMARK_TOKENS` value) that names no token: serving would leave the
    /// API open, which is never what naming a tokens file means.
    #[error(
        "{origin}: no token in it: it must hold at least one line `read TOKEN` or `write TOKEN` (TOKEN of 16 characters or more, e.g. from `openssl rand -hex 24`); to serve without tokens on loopback, do not pass it"
    )]
    NoToken {
        /// The file or variable.
        origin: String,
    },
}

fn mask(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < 6 || c.is_whitespace() || c == ':' {
                c
            } else {
                '*'
            }
        })
        .collect()
}

impl Tokens {
    /// No tokens.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether none are configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(
        &mut self,
        origin: &str,
        entry: usize,
        scope: &str,
        token: &str,
    ) -> Result<(), TokensError> {
        let scope = match scope {
            "read" => Scope::Read,
            "write" => Scope::Write,
            _ => {
                return Err(TokensError::Malformed {
                    origin: origin.to_owned(),
                    entry,
                    found: mask(&format!("{scope} {token}")),
                });
            }
        };
        if token.chars().count() < 16 {
            return Err(TokensError::TooShort {
                origin: origin.to_owned(),
                entry,
            });
        }
        self.entries.push((scope, token.as_bytes().to_vec()));
        Ok(())
    }

    /// Adds the lines of a tokens file: `read TOKEN` or `write TOKEN`, `#` comments, blank lines.
    /// A file without a token is an error ([`TokensError::NoToken`]), never an open server.
    pub fn add_file_text(&mut self, origin: &str, text: &str) -> Result<(), TokensError> {
        let before = self.entries.len();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(scope), Some(token), None) => self.push(origin, i + 1, scope, token)?,
                _ => {
                    return Err(TokensError::Malformed {
                        origin: origin.to_owned(),
                        entry: i + 1,
                        found: mask(line),
                    });
                }
            }
        }
        self.added_some_since(before, origin)
    }

    fn added_some_since(&self, before: usize, origin: &str) -> Result<(), TokensError> {
        if self.entries.len() == before {
            return Err(TokensError::NoToken {
                origin: origin.to_owned(),
            });
        }
        Ok(())
    }

    /// Adds the items of an environment value: `read:TOKEN,write:TOKEN`. A value without a
    /// token (only commas or blanks) is an error, like an empty tokens file.
    pub fn add_env_value(&mut self, origin: &str, value: &str) -> Result<(), TokensError> {
        let before = self.entries.len();
        for (i, item) in value.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            match item.split_once(':') {
                Some((scope, token)) => self.push(origin, i + 1, scope.trim(), token.trim())?,
                None => {
                    return Err(TokensError::Malformed {
                        origin: origin.to_owned(),
                        entry: i + 1,
                        found: mask(item),
                    });
                }
            }
        }
        self.added_some_since(before, origin)
    }

    /// The scope of a presented token. Every configured token is compared, each in time that
    /// depends only on the lengths, so the answer's timing does not tell which bytes matched.
    pub fn scope_of(&self, presented: &[u8]) -> Option<Scope> {
        let mut found: Option<Scope> = None;
        for (scope, token) in &self.entries {
            if constant_time_eq(token, presented) {
                found = Some(found.map_or(*scope, |f| f.max(*scope)));
            }
        }
        found
    }
}

/// Byte equality in time independent of where the first difference is (`subtle`'s
/// `ConstantTimeEq`; tokens of another length differ, and a length is not a secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// How requests are let in.
#[derive(Clone, Debug)]
pub enum AuthPolicy {
    /// No tokens: served on loopback only (or by the operator's explicit `--insecure`).
    Open,
    /// Bearer tokens required (except for `/healthz` and `/readyz`).
    Tokens(Arc<Tokens>),
}

/// Why the server must not start as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// No tokens, and an address other machines can reach.
    #[error(
        "refusing to serve {addr} without tokens: anyone who can reach it could read and write the store. Configure tokens (--tokens FILE or TIDEMARK_TOKENS=read:…,write:…), listen on 127.0.0.1, or pass --insecure if something in front of it authenticates"
    )]
    OpenOnNetwork {
        /// The listening address.
        addr: SocketAddr,
    },
}

/// The policy for a server listening on `addr`.
pub fn policy(
    tokens: Tokens,
    addr: SocketAddr,
    insecure: bool,
) -> Result<AuthPolicy, AuthConfigError> {
    if !tokens.is_empty() {
        tracing::info!(tokens = tokens.entries.len(), "bearer tokens required");
        return Ok(AuthPolicy::Tokens(Arc::new(tokens)));
    }
    if addr.ip().is_loopback() {
        tracing::warn!(%addr, "no tokens configured: the API is open, to this machine only (bound to loopback)");
        return Ok(AuthPolicy::Open);
    }
    if insecure {
        tracing::warn!(%addr, "no tokens configured and --insecure: the API is open to the network");
        return Ok(AuthPolicy::Open);
    }
    Err(AuthConfigError::OpenOnNetwork { addr })
}

/// How a request presented its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presented {
    /// `Authorization: Bearer TOKEN`: any scope the token has.
    Header,
    /// The `tidemark_token` cookie: the read scope at most.
    Cookie,
}

fn presented_token(request: &Request) -> Option<(&[u8], Presented)> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        let prefix = b"Bearer ";
        if value.len() > prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return Some((&value[prefix.len()..], Presented::Header));
        }
        return None;
    }
    // Browsers: the `tidemark_token` cookie.
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .map(|c| c.trim_ascii())
        .find_map(|c| c.strip_prefix(b"tidemark_token="))
        .map(|token| (token, Presented::Cookie))
}

/// The scope a request needs: none for the probes (`/healthz`, `/readyz`), the write scope for
/// administration (a backup holds every event) whatever the method, read for `GET`, `HEAD` and
/// `OPTIONS`, write for the rest. The OpenAPI document states each operation's scope from this
/// rule too.
pub(crate) fn needed_scope(method: &Method, path: &str) -> Option<Scope> {
    if path == "/healthz" || path == "/readyz" {
        return None;
    }
    Some(match *method {
        _ if path.starts_with("/v1/admin/") => Scope::Write,
        Method::GET | Method::HEAD | Method::OPTIONS => Scope::Read,
        _ => Scope::Write,
    })
}

/// The middleware: checks the token and the scope the method needs.
pub async fn require(State(policy): State<AuthPolicy>, request: Request, next: Next) -> Response {
    let tokens = match &policy {
        AuthPolicy::Open => return next.run(request).await,
        AuthPolicy::Tokens(tokens) => tokens,
    };
    let Some(needed) = needed_scope(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let Some((presented, how)) = presented_token(&request) else {
        return unauthorized("missing bearer token: send `Authorization: Bearer TOKEN`");
    };
    let scope = tokens.scope_of(presented);
    if how == Presented::Cookie && needed > Scope::Read && scope.is_some() {
        return unauthorized(
            "the tidemark_token cookie only lets a browser read: send writes and administration with `Authorization: Bearer TOKEN`",
        );
    }
    match scope {
        None => unauthorized("the bearer token is not one this server knows"),
        Some(scope) if scope < needed => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may read, not write or administer: use a token with the write scope",
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"tidemark\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_env_values_parse_and_write_includes_read() {
        let mut tokens = Tokens::none();
        tokens
            .add_file_text(
                "tokens.txt",
                "# readers\nread  r-0123456789abcdef\n\nwrite w-0123456789abcdef\n",
            )
            .unwrap();
        tokens
            .add_env_value("TIDEMARK_TOKENS", "read:e-0123456789abcdef")
            .unwrap();
        assert_eq!(tokens.scope_of(b"r-0123456789abcdef"), Some(Scope::Read));
        assert_eq!(tokens.scope_of(b"w-0123456789abcdef"), Some(Scope::Write));
        assert_eq!(tokens.scope_of(b"e-0123456789abcdef"), Some(Scope::Read));
        assert_eq!(tokens.scope_of(b"w-0123456789abcdeF"), None);
        assert_eq!(tokens.scope_of(b""), None);
    }

    #[test]
    fn bad_entries_are_named_without_printing_the_secret() {
        let err = Tokens::none()
            .add_file_text(
                "t.txt",
                "read r-0123456789abcdef\nadmin a-0123456789abcdef\n",
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.txt: entry 2"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        let err = Tokens::none().add_env_value("E", "read:short").unwrap_err();
        assert_eq!(
            err,
            TokensError::TooShort {
                origin: "E".into(),
                entry: 1
            }
        );
    }

    #[test]
    fn a_file_or_value_without_a_token_is_an_error_not_an_open_server() {
        for text in ["", "\n\n", "# readers\n  # and writers\n\n"] {
            let err = Tokens::none().add_file_text("t.txt", text).unwrap_err();
            assert_eq!(
                err,
                TokensError::NoToken {
                    origin: "t.txt".into()
                }
            );
            let message = err.to_string();
            assert!(
                message.contains("read TOKEN") && message.contains("write TOKEN"),
                "{message}"
            );
        }
        let err = Tokens::none().add_env_value("E", " , ,").unwrap_err();
        assert_eq!(err, TokensError::NoToken { origin: "E".into() });
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn open_only_on_loopback_unless_insecure() {
        let lo: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        assert!(matches!(
            policy(Tokens::none(), lo, false),
            Ok(AuthPolicy::Open)
        ));
        assert_eq!(
            policy(Tokens::none(), any, false).unwrap_err(),
            AuthConfigError::OpenOnNetwork { addr: any }
        );
        assert!(matches!(
            policy(Tokens::none(), any, true),
            Ok(AuthPolicy::Open)
        ));
        let mut tokens = Tokens::none();
        tokens
            .add_env_value("E", "read:r-0123456789abcdef")
            .unwrap();
        assert!(matches!(
            policy(tokens, any, false),
            Ok(AuthPolicy::Tokens(_))
        ));
    }
}
