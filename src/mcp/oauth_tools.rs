//! The OAuth administration tools (admin only): the registered clients, the
//! live tokens and sessions, and the signing keys, over `manage::oauth_admin`
//! exactly as `/api/v1/oauth/...` serves them; every operation refuses a
//! caller who is not the admin, so a non-admin gets that refusal as a tool
//! error. Nothing here returns a secret (client secrets are never shown,
//! tokens by their `jti` only).

use serde_json::json;

use super::tools::{call, input, list_output_of, listed, object_schema_of, out, request, Effect, Tool};
use crate::manage::oauth_admin::{self, ClientKey, ClientView, JtiKey, OAuthRemoved, Rotated, SessionKey, SessionView, TokenList};

/// The OAuth tools, reads first.
pub fn all() -> Vec<Tool> {
    let none = || input(json!({}), &[], false);
    vec![
        Tool::read(
            "list_oauth_clients",
            "Lists the OAuth clients registered with the authorization server (admin; never their secrets).",
            none(),
            list_output_of::<ClientView>("clients"),
            call!(|m, c, _a| listed("clients", oauth_admin::list_clients(m, c).await?)),
        ),
        Tool::read(
            "show_oauth_client",
            "Shows one registered OAuth client (admin; never its secret).",
            object_schema_of::<ClientKey>(),
            object_schema_of::<ClientView>(),
            call!(|m, c, a| out(oauth_admin::get_client(m, c, request::<ClientKey>(a)?).await?)),
        ),
        Tool::read(
            "list_oauth_tokens",
            "Lists the live OAuth access tokens by jti, counted per client (admin; never the tokens themselves).",
            none(),
            object_schema_of::<TokenList>(),
            call!(|m, c, _a| out(oauth_admin::list_tokens(m, c).await?)),
        ),
        Tool::read(
            "list_oauth_sessions",
            "Lists the OAuth sessions (token families of one login) with live access tokens (admin).",
            none(),
            list_output_of::<SessionView>("sessions"),
            call!(|m, c, _a| listed("sessions", oauth_admin::list_sessions(m, c).await?)),
        ),
        Tool::write(
            "delete_oauth_client",
            "Deletes a registered OAuth client (admin).",
            Effect::Replaces,
            object_schema_of::<ClientKey>(),
            object_schema_of::<OAuthRemoved>(),
            call!(|m, c, a| out(oauth_admin::delete_client(m, c, request::<ClientKey>(a)?).await?)),
        ),
        Tool::write(
            "revoke_oauth_token",
            "Revokes one live OAuth access token by its jti (admin).",
            Effect::Replaces,
            object_schema_of::<JtiKey>(),
            object_schema_of::<OAuthRemoved>(),
            call!(|m, c, a| out(oauth_admin::revoke_token(m, c, request::<JtiKey>(a)?).await?)),
        ),
        Tool::write(
            "revoke_oauth_session",
            "Revokes an OAuth session: every access and refresh token of the family (admin).",
            Effect::Replaces,
            object_schema_of::<SessionKey>(),
            object_schema_of::<OAuthRemoved>(),
            call!(|m, c, a| out(oauth_admin::revoke_session(m, c, request::<SessionKey>(a)?).await?)),
        ),
        Tool::write(
            "rotate_oauth_keys",
            "Rotates the authorization server's signing key (admin); the previous key stays published for verification.",
            Effect::Adds,
            none(),
            object_schema_of::<Rotated>(),
            call!(|m, c, _a| out(oauth_admin::rotate_keys(m, c).await?)),
        ),
    ]
}
