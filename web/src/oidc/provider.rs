//! The city account's provider as the service sees it: discovery (lazy,
//! kept for an hour), the authorization request (code + PKCE + `state` +
//! `nonce`), the code exchange with the ID token's checks, the verified
//! phone; and the sealed cookie that carries a login's secrets from the
//! redirect to the callback. Uses the `openidconnect` crate; knows nothing of
//! pages or the store.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use checkin_core::otp::derive_key;
use checkin_core::privacy::KEY_BYTES;
use checkin_core::Keys;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use rand::RngCore;

use crate::config::OidcConfig;

/// The client `openidconnect` builds from the provider's metadata.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered metadata (endpoints, signing keys) is used before it
/// is read again: a provider rotates its keys now and then.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a login may take between our redirect and the callback.
pub(crate) const LOGIN_LIFE_S: i64 = 600;
/// Random bytes of the cookie's sealing nonce (XChaCha20).
const SEAL_NONCE_BYTES: usize = 24;

/// Why a login through the provider did not give a verified phone.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    /// Discovery, the token or the user-info request did not get through
    /// (or the settings cannot make a request at all).
    #[error("the provider is unreachable: {0}")]
    Unavailable(String),
    /// The provider answered, but not with what the flow needs (an error
    /// response, an ID token that fails its checks).
    #[error("the provider's answer was refused: {0}")]
    Refused(&'static str),
    /// The account has no phone, or its phone is not verified.
    #[error("the account has no verified phone")]
    NoVerifiedPhone,
}

/// A login under way: what the callback must check, and where it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub issued: DateTime<Utc>,
    pub consent: bool,
    /// The premises' code (`123-456-789`).
    pub premises: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

struct Discovered {
    at: Instant,
    http: openidconnect::reqwest::Client,
    client: Client,
}

/// The configured provider, its discovery cache and the cookie key.
pub(crate) struct Provider {
    config: OidcConfig,
    redirect_url: String,
    cookie_key: [u8; KEY_BYTES],
    cached: tokio::sync::Mutex<Option<std::sync::Arc<Discovered>>>,
}

impl Provider {
    /// The provider of `config`; the callback is `{public_base_url}/auth/callback`.
    pub(crate) fn new(config: &OidcConfig, public_base_url: &str, keys: &Keys) -> Provider {
        Provider {
            config: config.clone(),
            redirect_url: format!("{}/auth/callback", public_base_url.trim_end_matches('/')),
            cookie_key: derive_key(keys, "web/oidc-cookie"),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The discovered client: cached, read again when older than
    /// `DISCOVERY_MAX_AGE` (the old one serves while the provider is down).
    async fn discovered(&self) -> Result<std::sync::Arc<Discovered>, FlowError> {
        let mut cached = self.cached.lock().await;
        if let Some(d) = cached.as_ref() {
            if d.at.elapsed() < DISCOVERY_MAX_AGE {
                return Ok(d.clone());
            }
        }
        match self.discover().await {
            Ok(d) => {
                let d = std::sync::Arc::new(d);
                *cached = Some(d.clone());
                Ok(d)
            }
            Err(e) => match cached.as_ref() {
                Some(old) => {
                    tracing::warn!(error = %e, "OpenID provider discovery failed; using the last one");
                    Ok(old.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn discover(&self) -> Result<Discovered, FlowError> {
        let unavailable =
            |what: &str, e: &dyn std::fmt::Display| FlowError::Unavailable(format!("{what}: {e}"));
        let http = openidconnect::reqwest::ClientBuilder::new()
            // The crate's advice: a redirect from the provider is never followed (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(self.config.request_timeout_ms))
            .build()
            .map_err(|e| unavailable("HTTP client", &e))?;
        let issuer = IssuerUrl::new(self.config.issuer_url.trim().to_owned())
            .map_err(|e| unavailable("issuer_url", &e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| unavailable("discovery", &e))?;
        let redirect = RedirectUrl::new(self.redirect_url.clone())
            .map_err(|e| unavailable("public_base_url", &e))?;
        let secret = (!self.config.client_secret.is_empty())
            .then(|| ClientSecret::new(self.config.client_secret.clone()));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect);
        Ok(Discovered {
            at: Instant::now(),
            http,
            client,
        })
    }

    /// Where to send the browser, and the login's secrets for the cookie.
    pub(crate) async fn authorize(
        &self,
        premises: String,
        consent: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, Pending), FlowError> {
        let d = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.scopes.split_whitespace() {
            // `openid` is always asked by the crate.
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.to_owned()));
            }
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url.to_string(),
            Pending {
                issued: now,
                consent,
                premises,
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Exchanges the provider's `code`, checks the ID token (signature by
    /// the provider's published keys, issuer, audience, expiry, our nonce)
    /// and returns the account's verified phone as the provider wrote it:
    /// from the ID token's claims, else from the user-info endpoint.
    pub(crate) async fn verified_phone(
        &self,
        code: String,
        pending: &Pending,
    ) -> Result<String, FlowError> {
        let d = self.discovered().await?;
        let token = d
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| FlowError::Unavailable("the provider names no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&d.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => {
                    FlowError::Unavailable(format!("token request: {e}"))
                }
                RequestTokenError::ServerResponse(_) => {
                    FlowError::Refused("the token endpoint answered an error")
                }
                _ => FlowError::Refused("the token response could not be read"),
            })?;
        let id_token = token
            .id_token()
            .ok_or(FlowError::Refused("no ID token in the token response"))?;
        let claims = id_token
            .claims(
                &d.client.id_token_verifier(),
                &Nonce::new(pending.nonce.clone()),
            )
            .map_err(|_| FlowError::Refused("the ID token failed its checks"))?;
        if let (Some(phone), Some(true)) = (claims.phone_number(), claims.phone_number_verified()) {
            return Ok(phone.as_str().to_owned());
        }
        let request = match d
            .client
            .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        {
            Ok(request) => request,
            // No user-info endpoint: the ID token was all there is.
            Err(_) => return Err(FlowError::NoVerifiedPhone),
        };
        let info: CoreUserInfoClaims =
            request.request_async(&d.http).await.map_err(|e| match e {
                openidconnect::UserInfoError::Request(e) => {
                    FlowError::Unavailable(format!("user info request: {e}"))
                }
                _ => FlowError::Refused("the user info could not be read"),
            })?;
        match (info.phone_number(), info.phone_number_verified()) {
            (Some(phone), Some(true)) => Ok(phone.as_str().to_owned()),
            _ => Err(FlowError::NoVerifiedPhone),
        }
    }

    /// The cookie value carrying `pending`: sealed (XChaCha20-Poly1305 under
    /// a key derived from the service keys), so the browser can neither read
    /// the PKCE verifier nor change anything.
    pub(crate) fn seal(&self, pending: &Pending) -> String {
        let text = format!(
            "{}|{}|{}|{}|{}|{}",
            pending.issued.timestamp_millis(),
            u8::from(pending.consent),
            pending.premises,
            pending.state,
            pending.nonce,
            pending.verifier
        );
        let mut nonce = [0u8; SEAL_NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.cookie_key).into());
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), text.as_bytes())
            .expect("sealing a short text cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The login a cookie carries, if it is ours and younger than
    /// `LOGIN_LIFE_S`.
    pub(crate) fn open(&self, value: &str, now: DateTime<Utc>) -> Option<Pending> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() <= SEAL_NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(SEAL_NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&self.cookie_key).into());
        let text = cipher.decrypt(XNonce::from_slice(nonce), sealed).ok()?;
        let text = String::from_utf8(text).ok()?;
        let mut parts = text.split('|');
        let issued = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
        let consent = parts.next()? == "1";
        let pending = Pending {
            issued,
            consent,
            premises: parts.next()?.to_owned(),
            state: parts.next()?.to_owned(),
            nonce: parts.next()?.to_owned(),
            verifier: parts.next()?.to_owned(),
        };
        let age = now - issued;
        let fresh =
            age <= chrono::Duration::seconds(LOGIN_LIFE_S) && age >= -chrono::Duration::minutes(5);
        (parts.next().is_none() && fresh).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_round_trips_and_refuses_tampering_and_age() {
        let keys = Keys::generate();
        let provider = Provider::new(&OidcConfig::default(), "http://x", &keys);
        // The cookie keeps milliseconds.
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let pending = Pending {
            issued: now,
            consent: true,
            premises: "123-456-789".into(),
            state: "s".repeat(22),
            nonce: "n".repeat(22),
            verifier: "v".repeat(43),
        };
        let value = provider.seal(&pending);
        // Fits the web's cookie reader (256 characters at most).
        assert!(value.len() <= 256, "{}", value.len());
        assert!(!value.contains("vvvv"));
        assert_eq!(provider.open(&value, now), Some(pending.clone()));
        let late = now + chrono::Duration::seconds(LOGIN_LIFE_S + 1);
        assert_eq!(provider.open(&value, late), None);
        let mut bytes = value.clone().into_bytes();
        bytes[40] = if bytes[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(provider.open(&String::from_utf8(bytes).unwrap(), now), None);
        let other = Provider::new(&OidcConfig::default(), "http://x", &Keys::generate());
        assert_eq!(other.open(&value, now), None);
    }
}
