//! Share links (decision 0023): the sender's routes. The public routes a link's page calls are
//! the browser's business, not a client's.

use mftplus_types::links::{CreateLinkRequest, CreatedLink, Link};
use mftplus_types::routes::{self, fill};

use crate::{Client, ClientError, Method};

impl Client {
    /// `POST /api/v1/transfers/{id}/links`: a link to a transfer whose header has a link
    /// stanza; the answer's token is shown this once.
    pub async fn create_link(
        &self,
        transfer_id: &str,
        request: &CreateLinkRequest,
    ) -> Result<CreatedLink, ClientError> {
        let path = fill(routes::TRANSFER_LINKS, "id", transfer_id);
        self.fetch(self.builder(Method::POST, &path).json(request))
            .await
    }

    /// `GET /api/v1/transfers/{id}/links`.
    pub async fn list_links(&self, transfer_id: &str) -> Result<Vec<Link>, ClientError> {
        let path = fill(routes::TRANSFER_LINKS, "id", transfer_id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// `POST /api/v1/links/{link_id}/revoke`.
    pub async fn revoke_link(&self, link_id: &str) -> Result<Link, ClientError> {
        let path = fill(routes::LINK_REVOKE, "link_id", link_id);
        self.fetch(self.builder(Method::POST, &path)).await
    }
}
