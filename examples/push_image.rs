//! Pushes local images through relctl's uploader, one after another on one
//! engine (as a release does), and prints for each the milliseconds it took
//! and its manifest digest. `scripts/bench-release.sh` times the floor's push
//! with it, so the floor and relctl upload the same way.
//!
//! Usage: push_image REGISTRY REPOSITORY:TAG...   (repositories with their registry host)

use std::sync::Arc;

use anyhow::Context;
use relctl::config::Builder;
use relctl::docker::{DockerEngine, ImageBuilder};
use relctl::release::progress::NoProgress;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((registry, images)) = args.split_first().filter(|(_, images)| !images.is_empty()) else {
        anyhow::bail!("usage: push_image REGISTRY REPOSITORY:TAG...");
    };
    // A release hands the engine its registry client's HTTP client, made before any push.
    let engine = DockerEngine::connect(registry, None, Arc::new(NoProgress), Builder::Classic)
        .await?
        .with_http(relctl::registry::client::http_client());
    for image in images {
        let (repository, tag) = image.rsplit_once(':').context("name each image as REPOSITORY:TAG")?;
        let start = std::time::Instant::now();
        let digest = engine.push(image, repository, tag).await?;
        println!("{} {digest}", start.elapsed().as_millis());
    }
    Ok(())
}
