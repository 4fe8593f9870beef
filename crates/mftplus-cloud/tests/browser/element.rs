//! An element of the current page, found by a CSS selector. It borrows its [`Browser`]; after
//! a navigation or a re-render it may be stale (`stale element reference`): find it again.

use super::{Browser, BrowserError};
use reqwest::Method;
use serde_json::{json, Value};

/// The key of a W3C element reference in JSON.
pub(super) const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
    /// The selector that found it, for error messages.
    selector: String,
}

impl<'b> Element<'b> {
    /// An element from a reply value of shape `{"element-6066-…": id}`.
    pub(super) fn from_reply(
        browser: &'b Browser,
        value: &Value,
        selector: &str,
    ) -> Result<Element<'b>, BrowserError> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| BrowserError::Protocol {
                command: format!("find `{selector}`"),
                detail: format!("not an element reference: {value}"),
            })?;
        Ok(Element {
            browser,
            id: id.to_owned(),
            selector: selector.to_owned(),
        })
    }

    pub(super) fn list_from_reply(
        browser: &'b Browser,
        value: Value,
        selector: &str,
    ) -> Result<Vec<Element<'b>>, BrowserError> {
        let Value::Array(items) = value else {
            return Err(BrowserError::Protocol {
                command: format!("find all `{selector}`"),
                detail: format!("not a list: {value}"),
            });
        };
        items
            .iter()
            .map(|item| Element::from_reply(browser, item, selector))
            .collect()
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// This element as an argument of [`Browser::execute`] (`arguments[i]` is the DOM node).
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    async fn command(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let path = format!("/element/{}{path}", self.id);
        let what = format!("{what} `{}`", self.selector);
        self.browser.command(&what, method, &path, body).await
    }

    /// Clicks its centre, scrolling it into view first; fails with `element not interactable`
    /// or `element click intercepted` when the user could not click it either.
    pub async fn click(&self) -> Result<(), BrowserError> {
        self.command("click", Method::POST, "/click", None).await?;
        Ok(())
    }

    /// Types `text` into it (focusing it first), after what it already holds.
    pub async fn send_keys(&self, text: &str) -> Result<(), BrowserError> {
        let body = json!({ "text": text });
        self.command("send keys to", Method::POST, "/value", Some(body))
            .await?;
        Ok(())
    }

    /// Empties an input, a textarea or a contenteditable element.
    pub async fn clear(&self) -> Result<(), BrowserError> {
        self.command("clear", Method::POST, "/clear", None).await?;
        Ok(())
    }

    /// Its rendered text, as the user sees it (hidden text excluded).
    pub async fn text(&self) -> Result<String, BrowserError> {
        let value = self.command("text of", Method::GET, "/text", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// An HTML attribute as written in the page (`None` when absent). For what an input holds
    /// now, use [`Element::prop`]`("value")`.
    pub async fn attr(&self, name: &str) -> Result<Option<String>, BrowserError> {
        let path = format!("/attribute/{name}");
        let value = self
            .command("attribute of", Method::GET, &path, None)
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// A DOM property (`value`, `checked`, `disabled`…) as JSON.
    pub async fn prop(&self, name: &str) -> Result<Value, BrowserError> {
        let path = format!("/property/{name}");
        self.command("property of", Method::GET, &path, None).await
    }

    pub async fn is_displayed(&self) -> Result<bool, BrowserError> {
        let value = self
            .command("visibility of", Method::GET, "/displayed", None)
            .await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// The first element matching `css` inside this one.
    pub async fn find(&self, css: &str) -> Result<Element<'b>, BrowserError> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self
            .command(
                &format!("find `{css}` in"),
                Method::POST,
                "/element",
                Some(body),
            )
            .await?;
        Element::from_reply(self.browser, &value, css)
    }

    /// Every element matching `css` inside this one, in document order.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'b>>, BrowserError> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self
            .command(
                &format!("find all `{css}` in"),
                Method::POST,
                "/elements",
                Some(body),
            )
            .await?;
        Element::list_from_reply(self.browser, value, css)
    }
}
