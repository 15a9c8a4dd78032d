//! USSD check-in over SMPP: the link's MO handler for the whole gateway
//! ([`MoRouter`]) tells a USSD PDU (one with `ussd_service_op`) from an SMS
//! (which goes on to the SMS inbox unchanged) and runs the dialog of
//! `checkin_core::ussd` for it: the dialog found by the operator profile's
//! session key, each screen answered in the dialog (`MoAnswer::reply`) as a
//! `submit_sm` with `ussd_service_op` 2 (USSR request: a question) or 17
//! (PSSR response: the final screen), the session TLVs echoed.
//!
//! Dialogs live in memory, bounded in number (`dialogs_max`, the oldest
//! evicted) and in time (`dialog_timeout_ms` after the last screen): one
//! lost in a restart is simply dialled again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use checkin_core::ussd::{Dialog, Ending, Menu, Step};
use checkin_core::{Clock, Msisdn, MsisdnPolicy, OperatorName, ServiceZone, SmsInbox};
use serde::Deserialize;
use smsc_link::{HandlerError, Mo, MoAnswer, MoHandler, Reply, SubmitOptions, Tlv};
use tokio_util::sync::CancellationToken;

use crate::pipeline::MoInbox;

/// Most open dialogs kept by default.
pub const DIALOGS_MAX_DEFAULT: usize = 10_000;
/// A dialog is forgotten this long after its last screen by default (the
/// networks drop theirs after 30–180 s).
pub const DIALOG_TIMEOUT_MS_DEFAULT: u64 = 120_000;
/// How often forgotten dialogs are swept (and counted `timeout`).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// `ussd_service_op` values (SMPP 5.0 §4.8.4.62).
mod op {
    /// PSSR indication: the visitor dialled.
    pub const PSSR_INDICATION: u8 = 1;
    /// USSR request: our question; the dialog continues.
    pub const USSR_REQUEST: u8 = 2;
    /// PSSD indication, which some gateways send for a dialled string.
    pub const PSSD_INDICATION: u8 = 16;
    /// PSSR response: our final screen.
    pub const PSSR_RESPONSE: u8 = 17;
    /// USSR confirm: the visitor answered our question.
    pub const USSR_CONFIRM: u8 = 18;
    /// From here on, vendor values; those seen mean the network ended the
    /// dialog (e.g. 0x81, an abort).
    pub const VENDOR_ABORT_MIN: u8 = 0x80;
}

/// Where the operator keeps the dialog's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKey {
    /// `its_session_info` when present, else `user_message_reference` (with
    /// the MSISDN) when present, else the MSISDN alone.
    #[default]
    Auto,
    /// `its_session_info` (0x1383) octet 1, with the MSISDN.
    ItsSessionInfo,
    /// `user_message_reference` (0x0204), unique only with the MSISDN.
    UserMessageReference,
    /// The MSISDN: one dialog per phone.
    Msisdn,
}

/// The operator's USSD profile: `[smsc.ussd]` in `checkin.toml` (also
/// read when the bundled simulator stands in for the SMSC). Every key
/// optional; the defaults accept every variant we know.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UssdConfig {
    /// The service code visitors dial, without `*` and `#`. Default `7377`.
    pub short_code: String,
    /// Where the dialog id lives. Default `auto`.
    pub session_key: SessionKey,
    /// `service_type` written on our screens (e.g. `USSD`). Default none.
    pub service_type: Option<String>,
    /// `data_coding` of a screen in the GSM alphabet (e.g. 15 = 0x0F, the
    /// USSD coding); Cyrillic screens are UCS2 (0x08) whatever this says.
    /// Default none (0x00).
    pub gsm7_data_coding: Option<u8>,
    /// Queue the usual SMS confirmation after a USSD check-in (the screen
    /// vanishes; the guard needs the SMS). Default true.
    pub confirm_by_sms: bool,
    /// Most open dialogs; beyond it the oldest is forgotten. Default 10 000.
    pub dialogs_max: usize,
    /// A dialog is forgotten this long after its last screen. Default 120 000.
    pub dialog_timeout_ms: u64,
}

impl Default for UssdConfig {
    fn default() -> Self {
        UssdConfig {
            short_code: "7377".into(),
            session_key: SessionKey::Auto,
            service_type: None,
            gsm7_data_coding: None,
            confirm_by_sms: true,
            dialogs_max: DIALOGS_MAX_DEFAULT,
            dialog_timeout_ms: DIALOG_TIMEOUT_MS_DEFAULT,
        }
    }
}

impl UssdConfig {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.short_code.is_empty() || !self.short_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err("[smsc.ussd] short_code must be digits".into());
        }
        if self.service_type.as_ref().is_some_and(|s| s.len() > 5) {
            return Err("[smsc.ussd] service_type takes at most 5 characters".into());
        }
        if self.dialogs_max == 0 || self.dialog_timeout_ms == 0 {
            return Err("[smsc.ussd] dialogs_max and dialog_timeout_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// A dialog's identity (the phone is kept in memory only, never logged).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Session(String, u8),
    Reference(String, Vec<u8>),
    Phone(String),
}

struct Entry {
    dialog: Dialog,
    touched: Instant,
}

/// The open dialogs, bounded in number and time.
struct Dialogs {
    map: HashMap<Key, Entry>,
    max: usize,
    timeout: Duration,
}

impl Dialogs {
    /// The dialog of `key`; `None` when there is none or it timed out.
    fn take(&mut self, key: &Key, now: Instant) -> Option<Dialog> {
        let entry = self.map.remove(key)?;
        if now.duration_since(entry.touched) > self.timeout {
            count(Outcome::Timeout);
            return None;
        }
        Some(entry.dialog)
    }

    fn put(&mut self, key: Key, dialog: Dialog, now: Instant) {
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.sweep(now);
            // Still full: the oldest goes (a scan, only when full).
            if self.map.len() >= self.max {
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.touched)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.map.remove(&oldest);
                    count(Outcome::Evicted);
                }
            }
        }
        self.map.insert(
            key,
            Entry {
                dialog,
                touched: now,
            },
        );
    }

    /// Forgets the dialogs past their timeout.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.timeout;
        let before = self.map.len();
        self.map
            .retain(|_, e| now.duration_since(e.touched) <= timeout);
        for _ in self.map.len()..before {
            count(Outcome::Timeout);
        }
    }
}

/// How a dialog ended, besides the menu's own endings.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ended(Ending),
    /// The network aborted it (vendor `ussd_service_op`, or the end bit).
    Aborted,
    /// Forgotten after `dialog_timeout_ms`.
    Timeout,
    /// Forgotten to make room (`dialogs_max`).
    Evicted,
    /// An answer to a dialog we do not have (timed out, or a restart).
    Expired,
    /// An operation we do not know.
    UnknownRequest,
    /// A number the service does not serve.
    SenderRefused,
}

fn count(outcome: Outcome) {
    let label = match outcome {
        Outcome::Ended(ending) => ending.as_str(),
        Outcome::Aborted => "aborted",
        Outcome::Timeout => "timeout",
        Outcome::Evicted => "evicted",
        Outcome::Expired => "expired",
        Outcome::UnknownRequest => "unknown_request",
        Outcome::SenderRefused => "sender_refused",
    };
    metrics::counter!("checkin_ussd_dialogs_total", "outcome" => label).increment(1);
}

/// The USSD side of the MO path.
pub(crate) struct Ussd {
    config: UssdConfig,
    menu: Menu,
    dialogs: Mutex<Dialogs>,
    inbox: SmsInbox,
    policy: MsisdnPolicy,
    clock: Arc<dyn Clock>,
    /// The operator whose link carries these dialogs (its subscribers'
    /// routes are learned from them).
    operator: OperatorName,
}

impl Ussd {
    pub(crate) fn new(
        config: UssdConfig,
        zone: ServiceZone,
        inbox: SmsInbox,
        policy: MsisdnPolicy,
        clock: Arc<dyn Clock>,
        operator: OperatorName,
    ) -> Ussd {
        let menu = Menu {
            short_code: config.short_code.clone(),
            zone,
            confirm_by_sms: config.confirm_by_sms,
        };
        let dialogs = Mutex::new(Dialogs {
            map: HashMap::new(),
            max: config.dialogs_max.max(1),
            timeout: Duration::from_millis(config.dialog_timeout_ms),
        });
        Ussd {
            config,
            menu,
            dialogs,
            inbox,
            policy,
            clock,
            operator,
        }
    }

    fn dialogs(&self) -> MutexGuard<'_, Dialogs> {
        // A panic elsewhere cannot leave the map half-changed: every change
        // is one call on it.
        self.dialogs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sweeps timed-out dialogs every second until `stop` (the gateway's
    /// `Service::Ussd`), so that they are counted and their memory freed
    /// even when nobody dials.
    pub(crate) async fn sweep_until(self: Arc<Self>, stop: CancellationToken) {
        let mut every = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => self.dialogs().sweep(Instant::now()),
                _ = stop.cancelled() => return,
            }
        }
    }

    /// One USSD PDU: its screen (or none, for an abort), or a temporary
    /// error when the check-in could not be stored.
    async fn handle(&self, mo: Mo, service_op: Option<u8>) -> Result<MoAnswer, HandlerError> {
        let started = Instant::now();
        let session = tlv(&mo, Tlv::ITS_SESSION_INFO).filter(|v| v.len() == 2);
        let reference = tlv(&mo, Tlv::USER_MESSAGE_REFERENCE);
        let network_ended = session.is_some_and(|s| s[1] & 1 == 1);
        let from = match Msisdn::parse_with(&mo.from, &self.policy) {
            Ok(from) => from,
            Err(e) => {
                tracing::info!(reason = %e, "USSD from a number the service does not serve");
                count(Outcome::SenderRefused);
                let text = checkin_core::texts::ussd::number_refused();
                return Ok(self.answer(&mo, text, true, started));
            }
        };
        let key = self.key(&from, session, reference);
        let now = Instant::now();
        let (mut dialog, mut step) = match service_op {
            Some(op::PSSR_INDICATION | op::PSSD_INDICATION) if !network_ended => {
                // A new dial replaces whatever dialog the phone had open.
                self.dialogs().map.remove(&key);
                let dialled = dialled(&mo.to, &mo.text, &self.config.short_code);
                Dialog::begin(&self.menu, &dialled)
            }
            Some(op::USSR_CONFIRM) if !network_ended => match self.dialogs().take(&key, now) {
                Some(mut dialog) => {
                    let step = dialog.answer(&self.menu, &mo.text);
                    (dialog, step)
                }
                None => {
                    count(Outcome::Expired);
                    let text = checkin_core::texts::ussd::expired(&self.menu.dial());
                    return Ok(self.answer(&mo, text, true, started));
                }
            },
            Some(value) if value >= op::VENDOR_ABORT_MIN || network_ended => {
                // The network ended the dialog: nobody to show a screen to.
                if self.dialogs().map.remove(&key).is_some() {
                    count(Outcome::Aborted);
                }
                tracing::debug!(service_op = value, "USSD dialog aborted by the network");
                return Ok(MoAnswer::default());
            }
            None if network_ended => {
                if self.dialogs().map.remove(&key).is_some() {
                    count(Outcome::Aborted);
                }
                return Ok(MoAnswer::default());
            }
            other => {
                tracing::info!(service_op = ?other, "USSD operation not understood; answered with a final screen");
                count(Outcome::UnknownRequest);
                self.dialogs().map.remove(&key);
                let text = checkin_core::texts::ussd::not_understood(&self.menu.dial());
                return Ok(self.answer(&mo, text, true, started));
            }
        };
        loop {
            match step {
                Step::Ask(text) => {
                    self.dialogs().put(key, dialog, Instant::now());
                    return Ok(self.answer(&mo, text, false, started));
                }
                Step::End(text, ending) => {
                    count(Outcome::Ended(ending));
                    return Ok(self.answer(&mo, text, true, started));
                }
                Step::CheckIn(digits) => {
                    let committed = self
                        .inbox
                        .submit_ussd(
                            from.clone(),
                            digits,
                            self.clock.now(),
                            self.config.confirm_by_sms,
                            Some(self.operator.clone()),
                        )
                        .await;
                    match committed {
                        Ok(committed) => step = dialog.stored(&self.menu, &committed),
                        Err(e) => {
                            // Temporary: the network redelivers (or the
                            // visitor dials again); an answer finds its dialog.
                            if service_op == Some(op::USSR_CONFIRM) {
                                self.dialogs().put(key, dialog, Instant::now());
                            }
                            return Err(HandlerError(e.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// The dialog's key under the profile.
    fn key(&self, from: &Msisdn, session: Option<&[u8]>, reference: Option<&[u8]>) -> Key {
        let phone = from.as_str().to_owned();
        let by_session = || session.map(|s| Key::Session(phone.clone(), s[0]));
        let by_reference = || reference.map(|r| Key::Reference(phone.clone(), r.to_vec()));
        let found = match self.config.session_key {
            SessionKey::Auto => by_session().or_else(by_reference),
            SessionKey::ItsSessionInfo => by_session(),
            SessionKey::UserMessageReference => by_reference(),
            SessionKey::Msisdn => None,
        };
        found.unwrap_or_else(|| Key::Phone(phone.clone()))
    }

    /// The screen `text` as the answer to `mo`: `ussd_service_op` 17 when
    /// `last` (the dialog ends) else 2, the session TLVs that came echoed
    /// (`its_session_info`: same session, next sequence number, the end bit
    /// on the last screen), the profile's `service_type` and coding.
    fn answer(&self, mo: &Mo, text: String, last: bool, started: Instant) -> MoAnswer {
        let service_op = if last {
            op::PSSR_RESPONSE
        } else {
            op::USSR_REQUEST
        };
        let mut tlvs = vec![Tlv::new(Tlv::USSD_SERVICE_OP, [service_op])];
        if let Some(session) = tlv(mo, Tlv::ITS_SESSION_INFO).filter(|v| v.len() == 2) {
            let sequence = ((session[1] >> 1).wrapping_add(1)) & 0x7f;
            tlvs.push(Tlv::new(
                Tlv::ITS_SESSION_INFO,
                [session[0], (sequence << 1) | u8::from(last)],
            ));
        }
        if let Some(reference) = tlv(mo, Tlv::USER_MESSAGE_REFERENCE) {
            tlvs.push(Tlv::new(Tlv::USER_MESSAGE_REFERENCE, reference.to_vec()));
        }
        // The screen comes from the number the visitor dialled, when it is one.
        let source_addr = Some(mo.to.trim_matches(['*', '#']))
            .filter(|to| !to.is_empty() && to.len() <= 20 && to.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        metrics::histogram!("checkin_ussd_screen_seconds").record(started.elapsed());
        MoAnswer {
            reply: Some(Reply {
                to: mo.from.clone(),
                text,
                options: SubmitOptions {
                    source_addr,
                    tlvs,
                    service_type: self.config.service_type.clone(),
                    gsm7_data_coding: self.config.gsm7_data_coding,
                    ..SubmitOptions::default()
                },
            }),
        }
    }
}

/// The value of `mo`'s TLV `tag`, if it came.
fn tlv(mo: &Mo, tag: u16) -> Option<&[u8]> {
    mo.tlvs
        .iter()
        .find(|t| t.tag == tag)
        .map(|t| t.value.as_slice())
}

/// The whole string dialled, wherever the gateway put it: in
/// `short_message` (`*7377*123456789#`), or split between
/// `destination_addr` (`7377`, `*7377`) and `short_message`
/// (`123456789#`, `*123456789#`, or nothing for the menu).
fn dialled(to: &str, text: &str, short_code: &str) -> String {
    let text = text.trim();
    let service = to.trim().trim_matches(['*', '#']);
    let ours = format!("*{short_code}");
    if text.starts_with(&ours) {
        return text.to_owned();
    }
    // `#` alone (or nothing) after the service code: the menu.
    if text.trim_matches(['*', '#']).is_empty() {
        return if to.trim().starts_with('*') {
            to.trim().to_owned()
        } else {
            format!("*{service}#")
        };
    }
    if service == short_code {
        // The code after the service: `*7377` + `*123456789#`.
        let code = text.trim_start_matches('*');
        return format!("{ours}*{code}");
    }
    text.to_owned()
}

/// The link's MO handler: USSD to [`Ussd`], everything else to the SMS inbox.
#[derive(Clone)]
pub(crate) struct MoRouter {
    pub(crate) sms: MoInbox,
    pub(crate) ussd: Arc<Ussd>,
}

impl MoHandler for MoRouter {
    async fn on_mo(&self, mo: Mo) -> Result<(), HandlerError> {
        self.on_mo_dialog(mo).await.map(|_| ())
    }

    async fn on_mo_dialog(&self, mo: Mo) -> Result<MoAnswer, HandlerError> {
        match mo.tlvs.iter().find(|t| t.tag == Tlv::USSD_SERVICE_OP) {
            Some(service_op) => {
                let value = service_op.value.first().copied();
                self.ussd.handle(mo, value).await
            }
            None => {
                self.sms.on_mo(mo).await?;
                Ok(MoAnswer::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialled_string_is_put_together_wherever_it_came() {
        for (to, text, want) in [
            ("7377", "*7377*123456789#", "*7377*123456789#"),
            ("", "*7377#", "*7377#"),
            ("7377", "", "*7377#"),
            ("7377", "#", "*7377#"),
            ("*7377#", "", "*7377#"),
            ("7377", "123456789#", "*7377*123456789#"),
            ("*7377", "*123-456-789#", "*7377*123-456-789#"),
            ("4006", "*4006#", "*4006#"),
            ("1234", "hello", "hello"),
        ] {
            assert_eq!(dialled(to, text, "7377"), want, "{to:?} {text:?}");
        }
    }

    #[test]
    fn dialogs_are_bounded_in_number_and_time() {
        let mut dialogs = Dialogs {
            map: HashMap::new(),
            max: 2,
            timeout: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let key = |n: &str| Key::Phone(format!("+7916000000{n}"));
        dialogs.put(key("1"), Dialog::default(), t0);
        dialogs.put(key("2"), Dialog::default(), t0 + Duration::from_millis(10));
        // Full: the oldest goes to make room.
        dialogs.put(key("3"), Dialog::default(), t0 + Duration::from_millis(20));
        assert_eq!(dialogs.map.len(), 2);
        assert!(dialogs
            .take(&key("1"), t0 + Duration::from_millis(30))
            .is_none());
        assert!(dialogs
            .take(&key("2"), t0 + Duration::from_millis(30))
            .is_some());
        // Past the timeout: gone, whether asked for or swept.
        assert!(dialogs
            .take(&key("3"), t0 + Duration::from_millis(500))
            .is_none());
        dialogs.put(key("4"), Dialog::default(), t0);
        dialogs.sweep(t0 + Duration::from_millis(500));
        assert!(dialogs.map.is_empty());
    }

    #[test]
    fn the_profile_defaults_are_the_documented_ones() {
        let config: UssdConfig = toml::from_str("").unwrap();
        assert_eq!(config, UssdConfig::default());
        assert_eq!(config.short_code, "7377");
        assert_eq!(config.session_key, SessionKey::Auto);
        assert_eq!(config.dialogs_max, 10_000);
        assert_eq!(config.dialog_timeout_ms, 120_000);
        assert!(config.confirm_by_sms);
        let config: UssdConfig = toml::from_str(
            "session_key = \"user_message_reference\"\nservice_type = \"USSD\"\ngsm7_data_coding = 15",
        )
        .unwrap();
        assert_eq!(config.session_key, SessionKey::UserMessageReference);
        assert!(config.validate().is_ok());
        assert!(toml::from_str::<UssdConfig>("dialogs = 1").is_err());
        let long = UssdConfig {
            service_type: Some("USSD-GW".into()),
            ..UssdConfig::default()
        };
        assert!(long.validate().is_err());
    }
}
