//! User and token administration over PostgreSQL.

use super::PgStore;
use crate::records::{AdminError, NewToken, NewUser, TokenInfo, UserInfo};
use tessera_engine::StoreError;
use tessera_engine::challenge::DirectoryUser;

impl PgStore {
    pub fn add_user(&self, u: NewUser, now: u64) -> Result<i64, AdminError> {
        let _ = (u, now);
        unimplemented!("pg users")
    }

    pub fn list_users(&self) -> Result<Vec<UserInfo>, AdminError> {
        unimplemented!("pg users")
    }

    pub fn user(&self, name: &str) -> Result<UserInfo, AdminError> {
        let _ = name;
        unimplemented!("pg users")
    }

    pub fn unlock_user(&self, name: &str) -> Result<(), AdminError> {
        let _ = name;
        unimplemented!("pg users")
    }

    pub fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        let _ = name;
        unimplemented!("pg users")
    }

    pub fn add_token(&self, user: &str, tok: NewToken, now: u64) -> Result<i64, AdminError> {
        let _ = (user, tok, now);
        unimplemented!("pg users")
    }

    pub fn import(
        &self,
        rows: Vec<(NewUser, Option<NewToken>)>,
        now: u64,
    ) -> Result<(usize, usize), AdminError> {
        let _ = (rows, now);
        unimplemented!("pg users")
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, AdminError> {
        let _ = user;
        unimplemented!("pg users")
    }

    pub fn remove_token(&self, id: i64) -> Result<(), AdminError> {
        let _ = id;
        unimplemented!("pg users")
    }

    pub fn resync_token(
        &self,
        user: &str,
        otp1: &str,
        otp2: &str,
        range: u64,
    ) -> Result<(i64, u64), AdminError> {
        let _ = (user, otp1, otp2, range);
        unimplemented!("pg users")
    }

    pub fn directory_row(
        &self,
        name: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, StoreError> {
        let _ = name;
        unimplemented!("pg users")
    }

    pub fn set_password_hash(&self, name: &str, hash: Option<String>) -> Result<(), AdminError> {
        let _ = (name, hash);
        unimplemented!("pg users")
    }
}
