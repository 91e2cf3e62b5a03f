//! The directories and couriers the password kinds use, built from the published
//! configuration and rebuilt when a new version is published.

use crate::ldap::LdapDirectory;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_engine::challenge::{Courier, Directory};
use tessera_engine::{CompiledMethod, Published};
use tessera_store::{LocalDirectory, Storage};
use tracing::error;

/// What a method's `directory` and `courier` names resolve to.
pub struct Services {
    local: LocalDirectory,
    directories: HashMap<String, Arc<dyn Directory>>,
    couriers: HashMap<String, Arc<dyn Courier>>,
}

impl Services {
    pub fn build(published: &Published, store: &Storage) -> Services {
        let mut directories: HashMap<String, Arc<dyn Directory>> = HashMap::new();
        for (name, cfg) in &published.directories {
            match LdapDirectory::new(cfg.clone()) {
                Ok(d) => {
                    directories.insert(name.clone(), Arc::new(d));
                }
                Err(e) => {
                    error!(directory = %name, error = %e, "directory not usable; its methods reject")
                }
            }
        }
        let mut couriers: HashMap<String, Arc<dyn Courier>> = HashMap::new();
        for (name, cfg) in &published.couriers {
            match crate::courier::build(cfg) {
                Ok(c) => {
                    couriers.insert(name.clone(), Arc::from(c));
                }
                Err(e) => {
                    error!(courier = %name, error = %e, "courier not usable; its methods reject")
                }
            }
        }
        Services {
            local: LocalDirectory::new(store.clone()),
            directories,
            couriers,
        }
    }

    /// The method's directory, if it names one that is available.
    pub fn directory(&self, method: &CompiledMethod) -> Option<&dyn Directory> {
        match method.directory.as_deref()? {
            "local" => Some(&self.local),
            name => self.directories.get(name).map(|d| &**d),
        }
    }

    pub fn courier(&self, method: &CompiledMethod) -> Option<&dyn Courier> {
        self.couriers.get(method.courier.as_deref()?).map(|c| &**c)
    }
}
