//! Cookies of the current page, as WebDriver shows and sets them.

use super::{Browser, BrowserError};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A cookie as WebDriver shows it. [`Cookie::new`] for one to add.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Seconds since the Unix epoch; `None` for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
}

impl Cookie {
    pub fn new(name: &str, value: &str) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            ..Cookie::default()
        }
    }
}

impl Browser {
    /// The cookies the current page can see.
    pub async fn cookies(&self) -> Result<Vec<Cookie>, BrowserError> {
        let value = self
            .command("cookies", Method::GET, "/cookie", None)
            .await?;
        serde_json::from_value(value.clone()).map_err(|err| BrowserError::Protocol {
            command: "cookies".into(),
            detail: format!("{err}: {value}"),
        })
    }

    pub async fn cookie(&self, name: &str) -> Result<Option<Cookie>, BrowserError> {
        let cookies = self.cookies().await?;
        Ok(cookies.into_iter().find(|cookie| cookie.name == name))
    }

    /// Sets a cookie for the current page's domain (go to a page of that site first).
    pub async fn add_cookie(&self, cookie: &Cookie) -> Result<(), BrowserError> {
        let body = json!({ "cookie": cookie });
        let what = format!("add cookie {}", cookie.name);
        self.command(&what, Method::POST, "/cookie", Some(body))
            .await?;
        Ok(())
    }

    pub async fn delete_all_cookies(&self) -> Result<(), BrowserError> {
        self.command("delete cookies", Method::DELETE, "/cookie", None)
            .await?;
        Ok(())
    }
}
