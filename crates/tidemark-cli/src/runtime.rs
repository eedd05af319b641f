//! The async runtime and the HTTP listener of the commands that serve or talk to NATS (`serve`,
//! its replica mode, `emit`, `republish`), shared so that neither command module needs the other.

use std::net::SocketAddr;

use crate::{CliError, exit};

/// The async runtime of the commands that serve or talk to NATS.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                exit::FAILURE,
                anyhow::anyhow!("starting the async runtime: {e}"),
            )
        })
}

/// Binds the HTTP listener, naming the address when it cannot.
pub async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("cannot listen on {listen}: {e}"),
        )
    })?;
    let addr = listener.local_addr().map_err(anyhow::Error::from)?;
    Ok((listener, addr))
}
