//! An in-memory [`Notifier`] for the fast tier: it records every POST and
//! answers from a script (an error, or no answer at all, per attempt).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::{DeliveryError, Notifier};

/// How the fake answers one POST.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    Fail(DeliveryError),
    /// Never answers (the caller's timeout ends the attempt).
    Hang,
}

/// Records (url, body) of every POST; answers from `script`, then `Ok`.
#[derive(Default)]
pub struct FakeNotifier {
    pub posts: Mutex<Vec<(String, serde_json::Value)>>,
    pub script: Mutex<VecDeque<Answer>>,
}

impl FakeNotifier {
    pub fn new(script: impl IntoIterator<Item = Answer>) -> Arc<Self> {
        Arc::new(Self { posts: Mutex::default(), script: Mutex::new(script.into_iter().collect()) })
    }

    /// The bodies posted so far to `url`.
    pub fn bodies(&self, url: &str) -> Vec<serde_json::Value> {
        self.posts.lock().unwrap().iter().filter(|(u, _)| u == url).map(|(_, b)| b.clone()).collect()
    }
}

impl Notifier for FakeNotifier {
    fn post(&self, url: &SecretString, body: Vec<u8>, _: Duration) -> BoxFuture<'static, Result<(), DeliveryError>> {
        let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        self.posts.lock().unwrap().push((url.expose_secret().to_string(), value));
        let answer = self.script.lock().unwrap().pop_front().unwrap_or(Answer::Ok);
        Box::pin(async move {
            match answer {
                Answer::Ok => Ok(()),
                Answer::Fail(e) => Err(e),
                Answer::Hang => std::future::pending().await,
            }
        })
    }
}
