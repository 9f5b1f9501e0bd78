//! Version precedence for "latest": semantic versioning 2.0.0, releases above pre-releases.

use std::cmp::Ordering;

use crate::HubError;

/// Orders versions so that the greatest is the one `resolve(name, None)` picks: the highest
/// release, or the highest pre-release when a repository has no release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VersionKey(semver::Version);

impl VersionKey {
    /// Parses a version with the `semver` crate, which is stricter than
    /// `vouch_types::publish::check_version` in one place: numeric pre-release identifiers
    /// with leading zeros (`1.0.0-01`) are refused, as semver 2.0.0 requires.
    pub(crate) fn parse(v: &str) -> Result<Self, HubError> {
        semver::Version::parse(v)
            .map(VersionKey)
            .map_err(|e| HubError::InvalidManifest(format!("version {v:?}: {e}")))
    }
}

/// Semver precedence, highest first, for listing a repository's versions (pre-releases in their
/// semver place); versions that don't parse go last, by text.
pub(crate) fn highest_first(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (
        semver::Version::parse(a).ok(),
        semver::Version::parse(b).ok(),
    );
    match (pa, pb) {
        (Some(pa), Some(pb)) => pb.cmp(&pa),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        // A release outranks every pre-release, whatever their numbers; then semver precedence,
        // with build metadata as the semver crate's final tie-break so the order is total.
        (self.0.pre.is_empty(), &self.0).cmp(&(other.0.pre.is_empty(), &other.0))
    }
}

impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> VersionKey {
        VersionKey::parse(v).unwrap()
    }

    #[test]
    fn releases_outrank_prereleases_then_semver_order() {
        let ordered = [
            "0.9.0-alpha",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "2.0.0-rc.1",
            "0.1.0",
            "0.10.0",
            "1.0.0",
            "1.2.3",
            "1.10.0",
            "2.0.0",
        ];
        for w in ordered.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(VersionKey::parse("1.0.0-01").is_err());
        assert!(VersionKey::parse("v1.0.0").is_err());
    }
}
