//! The directories and couriers the password kinds use, built from the published
//! configuration and rebuilt when a new version is published.

use std::collections::HashMap;
use std::sync::Arc;
use tessera_engine::challenge::{Courier, Directory};
use tessera_engine::{CompiledMethod, Published};
use tessera_store::{LocalDirectory, SqliteStore};

/// What a method's `directory` and `courier` names resolve to.
pub struct Services {
    local: LocalDirectory,
    directories: HashMap<String, Arc<dyn Directory>>,
    couriers: HashMap<String, Arc<dyn Courier>>,
}

impl Services {
    pub fn build(_published: &Published, store: &SqliteStore) -> Services {
        Services {
            local: LocalDirectory::new(store.clone()),
            directories: HashMap::new(),
            couriers: HashMap::new(),
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
