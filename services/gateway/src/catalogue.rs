//! What the contracts say about the suite's services: which public services each area has,
//! and which methods stream. Read once from the descriptor set that `lrs-proto` embeds.

use std::collections::{HashMap, HashSet};

use prost::Message;

/// The suffix that marks the services meant only for other services.
pub const INTERNAL_SUFFIX: &str = "InternalService";

/// The suite's services and methods, from [`lrs_proto::FILE_DESCRIPTOR_SET`].
#[derive(Debug, Default)]
pub struct Catalogue {
    services: HashSet<String>,
    methods: HashSet<String>,
    streaming: HashSet<String>,
    public_services: HashMap<String, Vec<String>>,
}

impl Catalogue {
    /// Reads the embedded descriptor set.
    pub fn load() -> Result<Self, prost::DecodeError> {
        let set = prost_types::FileDescriptorSet::decode(lrs_proto::FILE_DESCRIPTOR_SET)?;
        let mut catalogue = Self::default();
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                let name = format!("{package}.{}", service.name());
                catalogue.services.insert(name.clone());
                for method in &service.method {
                    let path = format!("/{name}/{}", method.name());
                    if method.client_streaming() || method.server_streaming() {
                        catalogue.streaming.insert(path.clone());
                    }
                    catalogue.methods.insert(path);
                }
                let area = area_of(&name).map(str::to_owned);
                if let Some(area) = area.filter(|_| !name.ends_with(INTERNAL_SUFFIX)) {
                    catalogue
                        .public_services
                        .entry(area)
                        .or_default()
                        .push(name);
                }
            }
        }
        Ok(catalogue)
    }

    /// True when the method at `path` (`/lrs.batch.v1.BatchService/WatchBatchJob`) streams
    /// in either direction.
    pub fn is_streaming(&self, path: &str) -> bool {
        self.streaming.contains(path)
    }

    /// True when the contracts name the service of `path` but not its method: a call that no
    /// backend could answer. Services the contracts do not name are not judged.
    pub fn lacks_method(&self, path: &str) -> bool {
        let Some((service, _method)) = path.trim_start_matches('/').rsplit_once('/') else {
            return false;
        };
        self.services.contains(service) && !self.methods.contains(path)
    }

    /// The public services of `area` (`identity`).
    pub fn public_services(&self, area: &str) -> &[String] {
        self.public_services.get(area).map_or(&[], Vec::as_slice)
    }
}

/// The area of a service's full name: `identity` for `lrs.identity.v1.IdentityService`.
pub fn area_of(service: &str) -> Option<&str> {
    let mut parts = service.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("lrs"), Some(area), Some(_version), Some(_name)) if !area.is_empty() => Some(area),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_areas_and_streaming_methods() {
        let catalogue = Catalogue::load().expect("the embedded set decodes");
        let identity = catalogue.public_services("identity");
        assert!(
            identity
                .iter()
                .any(|name| name == "lrs.identity.v1.IdentityService")
        );
        assert!(catalogue.is_streaming("/lrs.identity.v1.IdentityService/ImportProviderList"));
        assert!(!catalogue.is_streaming("/lrs.identity.v1.IdentityService/SignIn"));
        assert!(catalogue.lacks_method("/lrs.identity.v1.IdentityService/SignOn"));
        assert!(!catalogue.lacks_method("/lrs.identity.v1.IdentityService/SignIn"));
        assert!(!catalogue.lacks_method("/lrs.echo.v1.EchoService/Echo"));
    }

    #[test]
    fn areas_come_from_lrs_names_only() {
        assert_eq!(area_of("lrs.learner.v1.LearnerService"), Some("learner"));
        assert_eq!(area_of("grpc.health.v1.Health"), None);
        assert_eq!(area_of("lrs.x"), None);
    }
}
