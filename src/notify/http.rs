//! The real [`Notifier`]: a JSON POST with reqwest. Its errors never carry
//! the URL (reqwest's do, so they are told by kind, without it).

use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::{DeliveryError, Notifier};

/// POSTs over one reqwest client; redirects are not followed (a webhook answers, it does not move).
pub struct HttpNotifier {
    http: reqwest::Client,
}

impl HttpNotifier {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("relctl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }
}

/// What went wrong, said without the URL.
fn describe(e: reqwest::Error, timeout: Duration) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout(timeout);
    }
    if e.is_connect() {
        return DeliveryError::Connect;
    }
    DeliveryError::Other(crate::chain::error_chain(&e.without_url()))
}

impl Notifier for HttpNotifier {
    fn post(
        &self,
        url: &SecretString,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), DeliveryError>> {
        let request = self
            .http
            .post(url.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body);
        Box::pin(async move {
            let response = request.send().await.map_err(|e| describe(e, timeout))?;
            let status = response.status();
            if status.is_success() { Ok(()) } else { Err(DeliveryError::Status(status.as_u16())) }
        })
    }
}
