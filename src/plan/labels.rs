//! The labels relctl writes into every image it builds, and reads back to
//! tell what an image in the registry was built from.

/// `org.opencontainers.image.created`: when the build was planned (RFC 3339).
pub const CREATED: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.revision`: the commit the image was built from.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// `org.opencontainers.image.source`: the repository's public URL.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.version`: the release's version (no prefix).
pub const VERSION: &str = "org.opencontainers.image.version";
/// The input key (see [`super::input_key`]): equal keys, equal images.
pub const INPUTS: &str = "io.relctl.inputs";
