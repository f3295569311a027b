//! What the access check decides, as data: the proxy turns a [`Denial`]
//! into its reply and a [`Pass`] into the upstream request's credentials.

use super::Identity;

/// What to do with the request.
pub enum Outcome {
    /// Auth does not apply to this request (public path, auth off): it goes
    /// on untouched, credentials included.
    Skip,
    /// Forward; with the caller's identity when a valid token was sent.
    Allow {
        /// The caller, when a valid token for this resource was sent.
        identity: Option<Identity>,
        /// What of the caller's credentials and identity reaches the upstream.
        pass: Pass,
    },
    /// Answer now (401, 403 or a redirect to the login).
    Deny(Denial),
    /// The token names a key this snapshot lacks: refresh once and retry.
    UnknownKey,
}

/// What an allowed request carries upstream; the proxy's session cookie
/// never leaves the edge once auth applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Keep the `Authorization` header (`auth_pass_token`).
    pub token: bool,
    /// Add the identity headers for a verified caller (`auth_pass_headers`).
    pub identity_headers: bool,
}

/// Why a request is refused, with what the client needs to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// 401: no usable token. `challenge` is the `WWW-Authenticate` value.
    Unauthorized {
        /// The `WWW-Authenticate` value naming the resource metadata.
        challenge: String,
        /// `unauthorized` (no token) or `invalid_token`.
        error: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// 403 `insufficient_scope`, with the challenge naming the scopes needed.
    InsufficientScope {
        /// The `WWW-Authenticate` value.
        challenge: String,
        /// Human-readable reason.
        message: String,
    },
    /// 403 `access_denied`: the user, e-mail or group lists refuse the caller.
    Forbidden {
        /// Human-readable reason.
        message: String,
    },
    /// 302 to the login page (a browser at a redirect-mode proxy).
    Login {
        /// The login URL with the return path.
        location: String,
    },
}

impl Denial {
    /// The HTTP status this denial is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthorized { .. } => 401,
            Denial::InsufficientScope { .. } | Denial::Forbidden { .. } => 403,
            Denial::Login { .. } => 302,
        }
    }
}
