//! `platforms` (top level and per image) and `fanout.runners`: platform
//! names checked against what an engine can build and a registry index can
//! name (`os/arch[/variant]`), and the runner each platform's fan-out job runs on.

use std::collections::BTreeMap;

use super::ConfigError;
use super::validate::Ctx;

/// Operating systems an engine builds images for.
const OSES: [&str; 2] = ["linux", "windows"];
/// Architectures (Go's GOARCH names, as the OCI image index uses them) and their variants.
const ARCHES: [(&str, &[&str]); 9] = [
    ("amd64", &["v2", "v3", "v4"]),
    ("arm64", &["v8"]),
    ("arm", &["v5", "v6", "v7", "v8"]),
    ("386", &[]),
    ("ppc64le", &[]),
    ("s390x", &[]),
    ("riscv64", &[]),
    ("mips64le", &[]),
    ("loong64", &[]),
];

/// The runner a platform's build job gets when `fanout.runners` does not name it.
pub const DEFAULT_RUNNER: &str = "ubuntu-latest";

/// `fanout:`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fanout {
    /// `runs-on` by platform.
    pub runners: BTreeMap<String, String>,
    /// `runs-on` of every other platform.
    pub default_runner: String,
}

impl Default for Fanout {
    fn default() -> Self {
        Self {
            runners: BTreeMap::from([("linux/arm64".to_string(), "ubuntu-24.04-arm".to_string())]),
            default_runner: DEFAULT_RUNNER.into(),
        }
    }
}

impl Fanout {
    /// The `runs-on` value of `platform`'s build job.
    pub fn runner(&self, platform: &str) -> &str {
        self.runners.get(platform).unwrap_or(&self.default_runner)
    }
}

/// `os/arch`, or `os/arch/variant` when there is a variant: how an index's
/// `platform` object and an image config's fields are written as one name.
pub fn platform_name(os: &str, arch: &str, variant: &str) -> String {
    match variant {
        "" => format!("{os}/{arch}"),
        v => format!("{os}/{arch}/{v}"),
    }
}

/// Why `value` is not a platform, or `None` when it is one.
pub fn platform_problem(value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let (os, arch, variant) = match parts[..] {
        [os, arch] => (os, arch, None),
        [os, arch, variant] => (os, arch, Some(variant)),
        _ => return Some(format!("`{value}` is not os/arch or os/arch/variant")),
    };
    if !OSES.contains(&os) {
        return Some(format!("`{value}`: unknown os `{os}` (known: {})", OSES.join(", ")));
    }
    let Some((_, variants)) = ARCHES.iter().find(|(a, _)| *a == arch) else {
        let known: Vec<&str> = ARCHES.iter().map(|(a, _)| *a).collect();
        return Some(format!("`{value}`: unknown architecture `{arch}` (known: {})", known.join(", ")));
    };
    match variant {
        Some(v) if !variants.contains(&v) => Some(match variants.is_empty() {
            true => format!("`{value}`: {arch} has no variants"),
            false => format!("`{value}`: unknown variant `{v}` of {arch} (known: {})", variants.join(", ")),
        }),
        _ => None,
    }
}

/// A `platforms` list: each a known platform, none twice, not empty.
pub(super) fn platforms(cx: &Ctx, field: &str, near: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    let hint = "write platforms as os/arch[/variant], e.g. [linux/amd64, linux/arm64]";
    if list.is_empty() {
        return Err(cx.invalid_at(
            cx.line_of_value(near, "platforms", 0),
            field,
            "the list is empty",
            format!("{hint}, or remove the key to build for the engine's own platform"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for p in list {
        if let Some(problem) = platform_problem(p) {
            return Err(cx.invalid_at(cx.line_of_value(near, p, 0), field, problem, hint));
        }
        if out.contains(p) {
            return Err(cx.invalid_at(
                cx.line_of_value(near, p, 1),
                field,
                format!("`{p}` is listed twice"),
                "list each platform once",
            ));
        }
        out.push(p.clone());
    }
    Ok(out)
}

/// `fanout.runners`: platforms (or `default`) to non-empty runner labels, over the defaults.
pub(super) fn fanout(cx: &Ctx, raw: &super::raw::RawFanout) -> Result<Fanout, ConfigError> {
    let mut fanout = Fanout::default();
    for (platform, runner) in &raw.runners {
        if runner.trim().is_empty() {
            return Err(cx.invalid_at(
                cx.line_of_value("runners", platform, 0),
                format!("fanout.runners.{platform}"),
                "the runner is empty",
                "name a runs-on label, e.g. ubuntu-24.04-arm",
            ));
        }
        if platform == "default" {
            fanout.default_runner = runner.clone();
            continue;
        }
        if let Some(problem) = platform_problem(platform) {
            return Err(cx.invalid_at(
                cx.line_of_value("runners", platform, 0),
                "fanout.runners",
                problem,
                "key runners by platform (os/arch[/variant]) or `default`",
            ));
        }
        fanout.runners.insert(platform.clone(), runner.clone());
    }
    Ok(fanout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_os_arch_and_an_optional_known_variant() {
        for ok in ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm64/v8", "windows/amd64", "linux/amd64/v3"] {
            assert_eq!(platform_problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("linux", "not os/arch"),
            ("linux/amd64/v2/x", "not os/arch"),
            ("linux/x86_64", "unknown architecture `x86_64`"),
            ("macos/arm64", "unknown os `macos`"),
            ("linux/arm/v9", "unknown variant `v9` of arm"),
            ("linux/s390x/v1", "s390x has no variants"),
            ("", "not os/arch"),
        ] {
            let problem = platform_problem(bad).unwrap_or_default();
            assert!(problem.contains(says), "{bad}: {problem}");
        }
    }

    #[test]
    fn runners_default_to_githubs_arm_and_linux_runners() {
        let f = Fanout::default();
        assert_eq!(f.runner("linux/arm64"), "ubuntu-24.04-arm");
        assert_eq!(f.runner("linux/amd64"), "ubuntu-latest");
        assert_eq!(f.runner("linux/s390x"), "ubuntu-latest");
    }
}

#[cfg(test)]
mod config_tests {
    use std::path::Path;

    fn parse(text: &str) -> Result<crate::config::Config, String> {
        crate::config::parse(text, Path::new("release.yaml")).map_err(|e| format!("{e} | {}", e.hint()))
    }

    const HEAD: &str = "namespace: n\nproject: p\n";

    #[test]
    fn platforms_apply_to_every_image_unless_an_image_names_its_own() {
        let c = parse(&format!(
            "{HEAD}platforms: [linux/amd64, linux/arm64]\nimages:\n  a: {{ context: a }}\n  b: {{ context: b, platforms: [linux/arm/v7] }}\n"
        ))
        .unwrap();
        assert_eq!(c.platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(c.image("a").unwrap().platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(c.image("b").unwrap().platforms, ["linux/arm/v7"]);
        let plain = parse(&format!("{HEAD}images: {{ a: {{ context: a }} }}\n")).unwrap();
        assert!(plain.image("a").unwrap().platforms.is_empty(), "the engine's own platform, as before");
        assert_eq!(plain.fanout, super::Fanout::default());
    }

    #[test]
    fn bad_platforms_and_runners_name_the_line_and_the_fix() {
        let cases = [
            (
                format!("{HEAD}platforms: [linux/amd64, linux/x86_64]\nimages: {{ a: {{ context: a }} }}\n"),
                "release.yaml:3",
                "unknown architecture `x86_64`",
            ),
            (
                format!(
                    "{HEAD}images:\n  a:\n    context: a\n    platforms:\n      - linux/arm64\n      - linux/arm64\n"
                ),
                "release.yaml:8",
                "`linux/arm64` is listed twice",
            ),
            (
                format!("{HEAD}platforms: []\nimages: {{ a: {{ context: a }} }}\n"),
                "release.yaml:3",
                "the list is empty",
            ),
            (
                format!("{HEAD}images: {{ a: {{ context: a }} }}\nfanout:\n  runners:\n    arm64: pi\n"),
                "release.yaml:6",
                "`arm64` is not os/arch",
            ),
            (
                format!("{HEAD}images: {{ a: {{ context: a }} }}\nfanout:\n  runners:\n    default: ''\n"),
                "release.yaml:6",
                "the runner is empty",
            ),
        ];
        for (text, at, says) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.starts_with(at) && err.contains(says), "{text}\n=> {err}");
        }
        let err = parse(&format!("{HEAD}platforms: [linux/amd64, linux/x86_64]\nimages: {{ a: {{ context: a }} }}\n"))
            .unwrap_err();
        assert!(err.contains("os/arch[/variant]"), "the hint shows the form: {err}");
    }

    #[test]
    fn runners_override_the_defaults_per_platform() {
        let c = parse(&format!(
            "{HEAD}images: {{ a: {{ context: a }} }}\nfanout: {{ runners: {{ linux/arm64: [self-hosted], default: big }} }}\n"
        ));
        // A runs-on label list is not a string: serde names the line.
        assert!(c.unwrap_err().contains("release.yaml:4"), "a list is refused");
        let c = parse(&format!(
            "{HEAD}images: {{ a: {{ context: a }} }}\nfanout: {{ runners: {{ linux/arm64: pi-runner, default: big }} }}\n"
        ))
        .unwrap();
        assert_eq!(c.fanout.runner("linux/arm64"), "pi-runner");
        assert_eq!(c.fanout.runner("linux/amd64"), "big");
    }
}
