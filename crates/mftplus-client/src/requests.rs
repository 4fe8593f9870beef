//! File requests (decision 0034): the owner's routes. The public routes a request's page calls
//! are the browser's business, not a client's.

use mftplus_types::requests::{CreateFileRequest, CreatedFileRequest, FileRequest};
use mftplus_types::routes::{self, fill};

use crate::{Client, ClientError, Method};

impl Client {
    /// `POST /api/v1/file-requests`: a request for files encrypted to the caller's key; the
    /// answer's token is shown this once.
    pub async fn create_file_request(
        &self,
        request: &CreateFileRequest,
    ) -> Result<CreatedFileRequest, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::FILE_REQUESTS)
                .json(request),
        )
        .await
    }

    /// `GET /api/v1/file-requests`: the caller's requests (everyone's with `transfers:read`).
    pub async fn list_file_requests(&self) -> Result<Vec<FileRequest>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::FILE_REQUESTS))
            .await
    }

    /// `POST /api/v1/file-requests/{id}/revoke`.
    pub async fn revoke_file_request(&self, id: &str) -> Result<FileRequest, ClientError> {
        let path = fill(routes::FILE_REQUEST_REVOKE, "id", id);
        self.fetch(self.builder(Method::POST, &path)).await
    }
}
